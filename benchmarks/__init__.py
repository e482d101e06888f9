"""Benchmarks: reproduction of the paper's tables (:mod:`benchmarks.reproduce`) and speed (:mod:`benchmarks.speed`)."""
