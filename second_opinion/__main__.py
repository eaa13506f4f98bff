"""``python -m second_opinion``: the same command line as ``second-opinion``."""

from .cli import main

main()
