"""Drives the real vineyard-csi binaries from Python: CSI stubs, driver processes, mounts.

Shared by the end-to-end tests (Tests/e2e, through conftest.py) and the benchmarks (scripts/),
so neither imports the other. It is neither a test nor a benchmark: it asserts nothing about the
driver and measures nothing. Put scripts/ on sys.path (or PYTHONPATH) to import it.
"""
