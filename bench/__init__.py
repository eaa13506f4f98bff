"""Benchmarks of second-opinion against floors measured in the same run: ``python -m bench``
(also ``second-opinion bench``). See docs/benchmarks.md for what each figure means and the
latest figures."""
