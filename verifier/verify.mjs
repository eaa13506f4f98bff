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
  fail("usage: verify.mjs checkpoint NOTE KEY | inclusion BUNDLE | consistency BUNDLE");
}

try {
  console.log(main(process.argv.slice(2)));
} catch (error) {
  console.log(`FAILED: ${error instanceof Failed ? error.message : `cannot read the input (${error.message})`}`);
  process.exit(1);
}
