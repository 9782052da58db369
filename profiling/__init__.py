"""Profiling: timers, percentiles, latency reports."""
