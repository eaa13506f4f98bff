"""Kept for the commands in README.md and docs/architecture.md: the ``fire``/``open`` section of
``python -m bench`` (bench/fire.py) on its own. Run: ``python bench/fire_vs_raw.py [--n 2000] [--pg URL]``."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="commands per round (5 rounds)")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL, or '' for SQLite only")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the checkout is not on the path
    config, fire, report = (importlib.import_module(f"bench.{m}") for m in ("config", "fire", "report"))
    pg = config.DEFAULT_PG if args.pg is None else args.pg
    sizes = dataclasses.replace(config.FULL, fire_ops=args.n)
    print(report.table(fire.run(sizes, ["sqlite", "postgresql"] if pg else ["sqlite"], pg)))


if __name__ == "__main__":
    main()
