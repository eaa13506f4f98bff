"""Benchmarks of second-opinion against floors measured in the same run: ``python -m bench`` in a
source checkout (the harness is not installed with the package). See docs/benchmarks.md for what
each figure means and the latest figures."""
