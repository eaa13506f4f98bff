#!/usr/bin/env node
// An independent verifier of second-opinion's audit checkpoints and proofs, in JavaScript on
// Node.js's own crypto (no package): it shares no code with the Python library, so an auditor
// need not trust the program that wrote the log to check it. What it checks, byte for byte:
//   - a C2SP signed note (tlog-checkpoint body, Ed25519 signature line, key id as in Go's sumdb/note)
//   - an RFC 6962 inclusion proof, verified as RFC 9162 section 2.1.3.2 says
//   - an RFC 6962 consistency proof between two checkpoints, as RFC 9162 section 2.1.4.2 says
// Usage:
//   node verify.mjs checkpoint NOTE_FILE PUBLIC_KEY_FILE
//   node verify.mjs inclusion BUNDLE.json      {"checkpoint", "public_key", "entry" (base64), "index", "proof": [base64]}
//   node verify.mjs consistency BUNDLE.json    {"old", "new" (signed notes), "public_key", "proof": [base64]}
//   node verify.mjs records EXPORT.jsonl [INCLUSION_BUNDLE.json ...]
//       recomputes every audit record's own hash from its fields (RFC 8785 JCS, docs/audit-format.md)
//       and checks each case's chain; with inclusion bundles, also that each proven entry
//       ("audit <sequence> <hash>") is a record of the export with that very hash, so the record's
//       content is tied to the signed checkpoint
// Exit 0 and one line "OK ..." when it holds; exit 1 and one line "FAILED: why" when it does not.
import { createHash, createPublicKey, verify as edVerify } from "node:crypto";
import { readFileSync } from "node:fs";

class Failed extends Error {}
const fail = (why) => { throw new Failed(why); };
const sha256 = (...parts) => createHash("sha256").update(Buffer.concat(parts)).digest();
const leafHash = (entry) => sha256(Buffer.from([0]), entry);
const nodeHash = (left, right) => sha256(Buffer.from([1]), left, right);
const b64 = (text, what) => {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) fail(`${what} is not base64`);
  return Buffer.from(text, "base64");
};

function parseKey(text) {
  const line = text.trim();
  const first = line.indexOf("+"), second = line.indexOf("+", first + 1);
  if (first < 1 || second < 0) fail("the public key is not name+keyid+key");
  const name = line.slice(0, first), id = line.slice(first + 1, second), raw = b64(line.slice(second + 1), "the public key");
  if (raw.length !== 33 || raw[0] !== 1) fail("the public key is not an Ed25519 key");
  const keyId = sha256(Buffer.from(name + "\n"), raw).subarray(0, 4);
  if (keyId.toString("hex") !== id) fail("the public key's id does not match its name and key");
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.subarray(1).toString("base64url") }, format: "jwk" });
  return { name, keyId, key };
}

function openCheckpoint(note, key) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) fail("the checkpoint is not a signed note");
  const body = note.slice(0, split + 1);
  let signed = false;
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) fail("a signature line is not '\u2014 name signature'");
    const raw = b64(m[2], "a signature");
    if (m[1] !== key.name || !raw.subarray(0, 4).equals(key.keyId)) continue;
    if (!edVerify(null, Buffer.from(body, "utf8"), key.key, raw.subarray(4))) fail("the signature does not hold: the checkpoint was changed");
    signed = true;
  }
  if (!signed) fail("the checkpoint is signed by an unknown key");
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3 || !lines[0] || !/^(0|[1-9][0-9]*)$/.test(lines[1])) fail("the checkpoint body is not origin, size, root");
  const root = b64(lines[2], "the root hash");
  if (root.length !== 32) fail("the root hash is not 32 bytes");
  return { origin: lines[0], size: BigInt(lines[1]), root };
}

function verifyInclusion(leaf, index, size, proof, root) {
  if (index < 0n || index >= size) return false;
  let fn = index, sn = size - 1n, r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n && r.equals(root);
}

function verifyConsistency(size1, size2, root1, root2, proof) {
  if (size1 < 0n || size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && root1.equals(root2);
  if (size1 === 0n) return proof.length === 0;
  if (proof.length === 0) return false;
  const path = (size1 & (size1 - 1n)) === 0n ? [root1, ...proof] : [...proof];
  let fn = size1 - 1n, sn = size2 - 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr); sr = nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n && fr.equals(root1) && sr.equals(root2);
}

// RFC 8785: JSON.stringify writes strings and numbers as JCS says; keys sorted by UTF-16 code units,
// which is what Array.prototype.sort compares by default.
function jcs(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(jcs).join(",")}]`;
  return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${jcs(value[k])}`).join(",")}}`;
}

// Encoding 1 is Python's json.dumps (sorted by code point, floats as Python's repr): the same text as
// JCS unless a float or a key beyond U+FFFF occurs, which this verifier then declines to judge.
function pythonAlike(value) {
  if (typeof value === "number") return Number.isInteger(value);
  if (value === null || typeof value !== "object") return true;
  if (Array.isArray(value)) return value.every(pythonAlike);
  return Object.entries(value).every(([k, v]) => !/[\uD800-\uDFFF]/.test(k) && pythonAlike(v));
}

const FIELDS = ["case_id", "seq", "event", "outcome", "from_state", "to_state", "actor_id", "actor_role",
  "on_behalf_of", "occurred_at", "recorded_at", "idempotency_key", "payload", "reason", "refusal", "prev_hash"];
const GENESIS = "0".repeat(64);

function checkRecords(text, bundles) {
  const heads = new Map(), hashes = new Map();
  let checked = 0, declined = 0, line = 0;
  for (const raw of text.split("\n")) {
    line += 1;
    if (!raw.trim()) continue;
    let record;
    try { record = JSON.parse(raw); } catch { fail(`line ${line} is not JSON`); }
    const where = `record ${record.case_id} #${record.seq} (line ${line})`;
    for (const f of [...FIELDS, "hash"]) if (!(f in record)) fail(`${where} has no ${f}`);
    const version = record.encoding ?? 1;
    if (version !== 1 && version !== 2) fail(`${where} has an unknown encoding ${version}`);
    const body = { v: version };
    for (const f of FIELDS) body[f] = record[f];
    if (version === 2) body.channel = record.channel ?? null;
    if (version === 1 && !pythonAlike(body)) {
      declined += 1;
    } else {
      const hash = createHash("sha256").update(jcs(body), "utf8").digest("hex");
      if (hash !== record.hash) fail(`${where}: its hash is not that of its content (changed after it was written)`);
      checked += 1;
    }
    if (record.prev_hash !== (heads.get(record.case_id) ?? GENESIS)) fail(`${where}: its chain is broken (a record before it is missing, moved or changed)`);
    heads.set(record.case_id, record.hash);
    if (record.sequence !== undefined) hashes.set(String(record.sequence), record.hash);
  }
  for (const bundle of bundles) {
    const entry = b64(bundle.entry ?? "", "the entry").toString("utf8");
    const m = /^audit (0|[1-9][0-9]*) ([0-9a-f]{64})$/.exec(entry);
    if (!m) continue;  // an access record: its content is not in an audit export
    if (!openCheckpointHolds(bundle)) fail(`the proof of audit record ${m[1]} does not hold`);
    if (hashes.get(m[1]) !== m[2]) fail(`audit record ${m[1]} of the proof is not in the export with that hash`);
  }
  const tail = declined ? `; ${declined} of encoding 1 with a float or an astral key not recomputed` : "";
  return `OK ${checked} record hashes recomputed, ${heads.size} chain(s) linked, ${bundles.length} proof(s) tied to the export${tail}`;
}

function openCheckpointHolds(bundle) {
  const cp = openCheckpoint(bundle.checkpoint, parseKey(bundle.public_key));
  const proof = (bundle.proof ?? []).map((p) => b64(p, "a proof hash"));
  return verifyInclusion(leafHash(b64(bundle.entry, "the entry")), BigInt(bundle.index), cp.size, proof, cp.root);
}

function main(argv) {
  const [command, ...files] = argv;
  const read = (file) => readFileSync(file, "utf8");
  if (command === "checkpoint" && files.length === 2) {
    const cp = openCheckpoint(read(files[0]), parseKey(read(files[1])));
    return `OK checkpoint of ${cp.origin}: ${cp.size} records, root ${cp.root.toString("hex")}`;
  }
  if ((command === "inclusion" || command === "consistency") && files.length === 1) {
    const bundle = JSON.parse(read(files[0]));
    const key = parseKey(bundle.public_key);
    const proof = (bundle.proof ?? []).map((p) => b64(p, "a proof hash"));
    if (command === "inclusion") {
      const cp = openCheckpoint(bundle.checkpoint, key);
      const index = BigInt(bundle.index);
      if (!verifyInclusion(leafHash(b64(bundle.entry, "the entry")), index, cp.size, proof, cp.root)) fail(`record ${index} is not in the log of this checkpoint`);
      return `OK record ${index} is in the log of ${cp.origin} at size ${cp.size}`;
    }
    const old = openCheckpoint(bundle.old, key), now = openCheckpoint(bundle.new, key);
    if (old.origin !== now.origin) fail("the checkpoints are of two logs");
    if (old.size === now.size && !old.root.equals(now.root)) fail(`a fork: two checkpoints of size ${old.size} with different roots`);
    if (!verifyConsistency(old.size, now.size, old.root, now.root, proof)) fail(`the log at ${now.size} does not extend the log at ${old.size}`);
    return `OK the log at ${now.size} extends the log at ${old.size}`;
  }
  if (command === "records" && files.length >= 1) {
    return checkRecords(read(files[0]), files.slice(1).map((f) => JSON.parse(read(f))));
  }
  fail("usage: verify.mjs checkpoint NOTE KEY | inclusion BUNDLE | consistency BUNDLE | records EXPORT [BUNDLE...]");
}

try {
  console.log(main(process.argv.slice(2)));
} catch (error) {
  console.log(`FAILED: ${error instanceof Failed ? error.message : `cannot read the input (${error.message})`}`);
  process.exit(1);
}
