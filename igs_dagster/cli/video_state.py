"""Where each video stands, read from the Dagster instance: done (with its note), in progress,
failed (with the reason) or not run yet. One reader for `igs send`, `igs retry`, `igs videos`
and `igs send --wait`, so they never disagree."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import dagster as dg

from igs_dagster.defs.failures import run_failure_reasons

JOB = "video_ingest"
ACTIVE = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
          dg.DagsterRunStatus.CANCELING}
SUMMARIZE = "content.summarize"
MAX_REASON = 1000  # a reason may end with the command that fixes it: not clipped short


@dataclass
class VideoState:
    key: str
    status: str  # done | running | failed | waiting | canceled | queued (no run yet)
    run_id: str | None = None
    reason: str | None = None  # failed: "<step>: <reason>"
    note: str | None = None
    title: str | None = None
    duration_s: float | None = None
    updated: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _meta(record, name: str):
    materialization = record.asset_materialization if record is not None else None
    value = materialization.metadata.get(name) if materialization is not None else None
    if value is None:
        return None
    inner = getattr(value, "value", value)
    return getattr(inner, "path", inner)


def _latest_materialization(instance: dg.DagsterInstance, asset: str, key: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
    ).records
    return records[0] if records else None


def ingest_runs(instance: dg.DagsterInstance, key: str | None = None, limit: int = 1000) -> list:
    """Ingest runs (not note re-enrichments), newest first; of one partition if `key`."""
    tags = {"dagster/partition": key} if key else {}
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=JOB, tags=tags), limit=limit
    )
    return [r for r in records if r.dagster_run.tags.get("igs/trigger") != SUMMARIZE]


def _ts(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds") if value else None


def state_of_run(instance: dg.DagsterInstance, key: str, record) -> VideoState:
    """The state a partition is in, given its newest ingest run (None: none yet)."""
    if record is None:
        return VideoState(key, "queued")
    run = record.dagster_run
    updated = _ts(record.end_time or record.start_time or record.create_timestamp.timestamp())
    state = VideoState(key, "running", run.run_id, updated=updated)
    if run.status in ACTIVE:
        return state
    if run.status == dg.DagsterRunStatus.SUCCESS:
        state.status = "done"
    elif run.status == dg.DagsterRunStatus.CANCELED:
        state.status, state.reason = "canceled", "the run was canceled"
    else:
        reasons = run_failure_reasons(instance, run.run_id, MAX_REASON)
        step = next((s for s in reasons if s != "(run)"), None)
        state.status = "failed"
        state.reason = (f"{step}: {reasons[step]}" if step else reasons.get("(run)")) or "run failed"
        waiting = _waiting(key)
        if waiting is not None:  # a live stream or premiere: queued again when due
            state.status, state.reason = "waiting", waiting.reason
    return state


def _waiting(key: str):
    """The video's entry in the waiting store (video/waiting.py), or None."""
    from igs_dagster.core.settings import load_settings
    from igs_dagster.video.waiting import WaitingVideos

    return WaitingVideos(load_settings().waiting_db).get(key)


def video_state(instance: dg.DagsterInstance, key: str) -> VideoState:
    """One partition's state, with its note path and title once materialized."""
    runs = ingest_runs(instance, key, limit=1)
    state = state_of_run(instance, key, runs[0] if runs else None)
    download = _latest_materialization(instance, "video_download", key)
    note = _latest_materialization(instance, "vault_note", key)
    state.title = _meta(download, "title")
    duration = _meta(download, "duration_s")
    state.duration_s = float(duration) if duration else None
    state.note = str(_meta(note, "note")) if note is not None and _meta(note, "note") else None
    return state


def describe(state: VideoState) -> str:
    """One line saying the truth about a video a user sent again."""
    if state.status == "done":
        return f"already done: {state.key} → {state.note or '(note path unknown)'}"
    if state.status == "running":
        return f"in progress: {state.key} (run {state.run_id[:8] if state.run_id else '?'})"
    if state.status == "waiting":
        return f"waiting: {state.key}: {(state.reason or '').removeprefix('waiting: ')}"
    if state.status in ("failed", "canceled"):
        hint = "" if "igs retry" in (state.reason or "") else f"; retry with `igs retry {state.key}`"
        return f"{state.status}: {state.key}: {state.reason}{hint}"
    return f"queued {state.key} (already known; no run has started yet)"
