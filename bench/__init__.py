"""Benchmarks: one module per subject, each with main() -> dict; results in bench/results/."""
