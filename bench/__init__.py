"""Benchmarks: each prints its figure and the ratio to the raw limit measured in the same run."""
