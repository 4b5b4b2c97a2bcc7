"""Shared pieces every pipeline and entry point uses; nothing here imports Dagster or a pipeline.

settings (IGS_* config), errors (one-line user errors), events + inbox (the durable event queue),
fsutil (atomic writes, path guards), redact (secrets out of text), agent_runner (agent CLIs under
supervision), system_log (the append-only log), local_http (a quiet loopback file server).
"""
