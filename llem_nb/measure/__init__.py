"""Layer 4, measure: one experiment, measured.

Owns the ``Harness`` (the one place that orders a measurement: load, warm-up, cooldown,
idle baseline, window) and everything computed from a window: token and latency
accounting, energy and net, the prefill/decode split, quality flags, warm-up and
thermal waits (one cooldown loop), FLOPs, CO₂, the environment record and the
timeseries. Imports config, results, energy and backends.
"""
