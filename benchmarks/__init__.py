"""Benchmarks: throughput of the library and reproduction of the paper's experiment."""
