"""The ``second-opinion`` command line (the console script ``second_opinion.cli:main``, and
``python -m second_opinion``). See :mod:`second_opinion.cli.root` for how it is put together and
docs/cli.md for its contract."""

from .root import app, main

__all__ = ["app", "main"]
