"""Profiling: stage timers, latency statistics, probes, pipeline profiles and latency tests.

``timer`` (StageTimer / NullTimer) · ``latency`` (summaries, jitter) · ``probes`` (memory, CPU,
NVML, Jetson rails, RAPL; sampled in the background) · ``pipelines`` (the registry of what
`edgeperc profile` can run) · ``profiler`` (warm-up, timed loop, interleaved peers) · ``report``
and ``plots`` (profile.json, report.md, PNGs) · ``trtexec`` (its --exportTimes/--exportProfile
JSON) · ``budgets`` (latency-test: budgets, baselines, JUnit). See docs/profiling.md.
"""
