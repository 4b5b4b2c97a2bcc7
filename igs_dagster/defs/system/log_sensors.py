"""One system-log line per pipeline stage, for every run however it was launched.

The run-outcome sensor (`defs/outcomes.py`) sees each finished run once (its cursor), whether a sensor,
the UI, a backfill or the dagster CLI launched it, and whatever the job (`video_ingest`, the
UI's ad-hoc asset job, the coding-loop jobs). Per run they write one line per step that
succeeded or finally failed (retries are not failures), from the run's own event log, with a
dedupe key `run:step:status` so a re-evaluated tick writes nothing twice. The steps themselves
never write these lines, so each stage is logged exactly once.
"""

from pathlib import Path

import dagster as dg

from igs_dagster.core import system_log
from igs_dagster.core.settings import Settings
from igs_dagster.defs.failures import run_failure_reasons

# step (asset/op) name → (stage name in the log, tool that does the work)
STAGES = {
    "video_download": ("video.download", "yt-dlp"),
    "video_archive": ("video.archive", "archive"),
    "transcript": ("transcript.process", "whisper"),
    "vault_note": ("note.write", "vault"),
    "enriched_summary": ("content.summarize", "enricher"),
    "search_index": ("search.index", "search"),
    "related_notes": ("notes.relate", "search"),
    "video_extras": ("media.extras", "ffmpeg"),
}
# small metadata values worth showing in the log line
DETAIL_KEYS = ("title", "location", "note", "enricher", "backend", "words", "real_time_factor")

_EVENTS = {
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
}


def _stage(step_key: str) -> tuple[str, str]:
    name = step_key.split("[")[0]
    if name.endswith("_check"):  # an asset check's step is `<asset>_<check name>`
        asset = next((a for a in STAGES if name.startswith(f"{a}_")), None)
        return f"check.{name.removeprefix(f'{asset}_').removesuffix('_check')}", "dagster"
    return STAGES.get(name, (f"{name.replace('_', '.')}", "dagster"))


def log_run_stages(instance: dg.DagsterInstance, run: dg.DagsterRun, settings: Settings) -> int:
    """Write the stage lines of a finished run to the settings' system log; return how many were
    new. The log lives in the vault: a vault that is missing raises VaultMissing (the outcomes
    sensor logs it) and no folder is created where the vault should be."""
    from igs_dagster.core.vault import require_vault

    log_path = settings.system_log
    if Path(log_path).is_relative_to(settings.vault_dir):
        require_vault(settings.vault_dir, settings.data_dir)
    partition = run.tags.get("dagster/partition")
    details: dict[str, list[str]] = {}
    outcomes: list[tuple[str, str, str | None, float]] = []
    for record in instance.get_records_for_run(run.run_id, of_type=_EVENTS).records:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            metadata = event.step_materialization_data.materialization.metadata
            details.setdefault(event.step_key, []).extend(
                f"{k}={metadata[k].value}" for k in DETAIL_KEYS if k in metadata
            )
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            outcomes.append((event.step_key, "succeeded", None, record.timestamp))
        else:
            outcomes.append((event.step_key, "failed", None, record.timestamp))
    if any(status == "failed" for _, status, _, _ in outcomes):  # the cause and the attempt count
        reasons = run_failure_reasons(instance, run.run_id)
        outcomes = [(step, status, reasons.get(step) if status == "failed" else None, at)
                    for step, status, _, at in outcomes]

    written = 0
    for step_key, status, reason, at in outcomes:  # each stage at its step's own time
        stage, tool = _stage(step_key)
        detail = f"{stage} {status}" + (f" for {partition}" if partition else "")
        if details.get(step_key):
            detail += " (" + ", ".join(details[step_key]) + ")"
        written += system_log.write_entry(
            log_path, f"{stage}.{status}", tool, detail, reason=reason,
            run_id=run.run_id, partition=partition,
            dedupe_key=f"{run.run_id}:{step_key}:{status}", at=at,
        )
    if run.status == dg.DagsterRunStatus.FAILURE and not any(s == "failed" for _, s, _, _ in outcomes):
        # the run died outside any step (worker killed, launch failure): say so once
        written += system_log.write_entry(
            log_path, "run.failed", "dagster", f"run of {run.job_name} failed"
            + (f" for {partition}" if partition else ""),
            reason="run worker exited or failed outside a step", run_id=run.run_id,
            partition=partition, dedupe_key=f"{run.run_id}:run:failed",
        )
    return written
