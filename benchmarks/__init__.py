"""Benchmarks of the algorithm files: `python benchmarks/run.py --help`."""
