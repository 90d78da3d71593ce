"""Layer 6: a run from start to end: the entry points, the driver loop, run directory, schedule,
checkpoints, keep-best, logs, signals."""
