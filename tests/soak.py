"""How long the soak, chaos and fuzz tests run: short in the suite, long on request (no tests here).

The suite runs each of them only as long as what it asserts needs. The long runs (the sizes these
tests had before they were shortened, and the ones docs/reliability.md reports) come back with

    SECOND_OPINION_SOAK=1 .venv/bin/pytest -n 0 -s tests/reliability tests/api/test_api_fuzz.py \
        tests/unit/test_replay_stateful.py

and one figure at a time with its own variable (``SECOND_OPINION_SOAK_SECONDS=60``,
``SECOND_OPINION_KILLS=50``, ...), which wins over ``SECOND_OPINION_SOAK``. Every assertion is the
same either way; only what is counted or waited for changes.
"""

from __future__ import annotations

import os

SOAK = os.environ.get("SECOND_OPINION_SOAK", "").strip().lower() not in ("", "0", "false", "no")


def setting(variable: str, suite: float, soak: float) -> float:
    """``$SECOND_OPINION_<variable>`` if set, else ``soak`` under SECOND_OPINION_SOAK, else ``suite``."""
    given = os.environ.get(f"SECOND_OPINION_{variable}", "").strip()
    if given:
        return float(given)
    return soak if SOAK else suite


def count(variable: str, suite: int, soak: int) -> int:
    return int(setting(variable, suite, soak))


def examples(suite: int, soak: int) -> int:
    """Hypothesis or schemathesis examples per test: ``suite``, or ``soak`` under SECOND_OPINION_SOAK
    (``SECOND_OPINION_EXAMPLES_SCALE=N`` multiplies the suite's count instead)."""
    scale = os.environ.get("SECOND_OPINION_EXAMPLES_SCALE", "").strip()
    if scale:
        return max(1, round(suite * float(scale)))
    return soak if SOAK else suite
