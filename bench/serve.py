"""The HTTP floor as a process: ``python -m bench.serve PORT`` serves :func:`bench.floors.bare_asgi`
with uvicorn exactly as ``second-opinion serve`` serves the app (same ``uvicorn.run`` options)."""

from __future__ import annotations

import sys

import uvicorn

from .floors import bare_asgi


def main(port: int) -> None:
    uvicorn.run(bare_asgi, host="127.0.0.1", port=port, log_level="info", proxy_headers=False)


if __name__ == "__main__":
    main(int(sys.argv[1]))
