"""System-wide sensors: the system log (one line per stage of every run) and the run-worker
watchdog (runs whose worker process died are failed, so run retries pick them up)."""
