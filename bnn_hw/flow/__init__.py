"""The flow layer: orchestration above the spokes (demo, sweep, report), calling their Python APIs."""
