"""Benchmarks of speed: ``python -m experiments.bench.<name>``; ratios measured side by side in one run."""
