"""``python -m bench [--quick | --smoke] [--json PATH] [--pg URL] [--only SECTION ...]``"""

from __future__ import annotations

import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m bench"))
