"""One system-log line per pipeline stage, written by the stage's own hook.

Hooks run in the step's process right after the step succeeds or finally fails (not on
retries), so each stage is logged once, with its run id and partition. The dedupe key makes a
hook re-run (re-execution of the same run id cannot happen, but a crashed process may be
retried by the run-retry daemon under a new run id) still write at most one line per run+step.
"""


import dagster as dg

from igs_dagster import system_log
from igs_dagster.settings import load_settings

# stage name in the log, tool that did the work
STAGES = {
    "video_download": ("video.download", "yt-dlp"),
    "video_archive": ("video.archive", "archive"),
    "transcript": ("transcript.process", "whisper"),
    "vault_note": ("note.write", "vault"),
    "enriched_summary": ("content.summarize", "enricher"),
}


def _write(context: dg.HookContext, status: str, reason: str | None) -> None:
    action, tool = STAGES.get(context.op.name, (context.op.name, "dagster"))
    run = context.instance.get_run_by_id(context.run_id)
    partition = run.tags.get("dagster/partition") if run else None
    detail = f"{action} {status}" + (f" for {partition}" if partition else "")
    system_log.write_entry(
        load_settings().system_log, f"{action}.{status}", tool, detail,
        reason=reason, run_id=context.run_id, partition=partition,
        dedupe_key=f"{context.run_id}:{context.step_key}:{status}",
    )


@dg.success_hook(name="log_stage_success")
def log_stage_success(context: dg.HookContext) -> None:
    _write(context, "succeeded", None)


@dg.failure_hook(name="log_stage_failure")
def log_stage_failure(context: dg.HookContext) -> None:
    err = context.op_exception
    reason = None
    if err is not None:
        reason = getattr(err, "description", None) or str(err) or type(err).__name__
        reason = reason.strip().splitlines()[0] if reason.strip() else type(err).__name__
    _write(context, "failed", reason)
