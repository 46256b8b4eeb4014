"""Benchmarks of the ggk-ebms endpoint against a no-op TLS baseline (docs/performance.md).

Run ``python -m bench --help`` from the project root; bench/README.md lists one command per
benchmark and docs/performance.md holds the method and the figures. Benchmarks are not tests:
they measure, print a table and write JSON under bench/results/, and never assert a timing.
"""
