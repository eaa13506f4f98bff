"""Run the shell examples of a Markdown page as one script and pair each with its documented output.

A ```bash block is run; the ```json or ```text block right after it is what it must print. JSON
is compared as a subset (every key the page shows must match; keys it leaves out, such as
hashes and random ids, are not compared), text line by line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
_MARK = "@@example {}@@"


def examples(markdown: str) -> list[tuple[str, str, str]]:
    """(script, output language, expected output) for each bash block followed by an output block."""
    blocks = _BLOCK.findall(markdown)
    out = []
    for (lang, body), following in zip(blocks, [*blocks[1:], ("", "")], strict=True):
        if lang == "bash":
            out.append((body, following[0], following[1] if following[0] in ("json", "text") else ""))
    return out


def run(pairs: list[tuple[str, str, str]], cwd: Path, env: dict[str, str], timeout: float = 120) -> list[str]:
    """Run every block in one bash process; the outputs, one per block. Background jobs die with it."""
    script = "set -eo pipefail\n" + "".join(f"echo '{_MARK.format(i)}'\n{body}\n" for i, (body, _, _) in
                                              enumerate(pairs)) + "echo '@@end@@'\n"  # fmt: skip
    # output goes to files, not pipes: a server started in the background keeps a pipe open
    with open(cwd / "examples.out", "w+") as out, open(cwd / "examples.err", "w+") as err:
        proc = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=out, stderr=err,
                                start_new_session=True)  # fmt: skip
        try:
            proc.wait(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    assert "@@end@@" in stdout, f"the examples stopped early (exit {proc.returncode}):\n{stdout[-2000:]}\n{stderr}"
    parts = re.split(r"@@example \d+@@\n", stdout.split("@@end@@")[0])[1:]
    return parts


def values(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    found, at = [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return found
        value, at = decoder.raw_decode(text, at)
        found.append(value)


def subset(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Differences where ``actual`` does not hold what ``expected`` shows."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        return [d for k, v in expected.items() for d in
                (subset(v, actual[k], f"{where}.{k}") if k in actual else [f"{where}.{k}: missing"])]  # fmt: skip
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {len(expected)} items, got {actual!r}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in subset(e, a, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def check(pairs: list[tuple[str, str, str]], outputs: list[str]) -> list[str]:
    problems = []
    for (script, lang, expected), got in zip(pairs, outputs, strict=True):
        first = script.strip().splitlines()[0]
        if lang == "json":
            try:
                want, have = values(expected), values(got)
            except ValueError as exc:
                problems.append(f"{first}: not the JSON the page shows ({exc}):\n{got}")
                continue
            if len(want) != len(have):
                problems.append(f"{first}: printed {len(have)} JSON values, the page shows {len(want)}:\n{got}")
                continue
            problems += [f"{first}: {d}" for w, h in zip(want, have, strict=True) for d in subset(w, h)]
        elif lang == "text" and expected.split() != got.split():
            problems.append(f"{first}: printed\n{got}\nthe page shows\n{expected}")
    return problems
