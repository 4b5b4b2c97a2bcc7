"""Notifications (IGS_NOTIFY__URLS) for finished work, sent by the run-outcome sensor
(`defs/outcomes.py`) after the system log: a note is ready, a video failed, a loop story
passed/failed/was skipped, a loop finished.

Each message has a key (run id, loop id + story + outcome) that `core.notify` sends once,
so a re-evaluated tick or a restarted daemon sends nothing twice. The sensor writes the log
first and guards each part on its own, so a failing notification service never costs a log line.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.notify import Message, Notifier, obsidian_link
from igs_dagster.core.settings import Settings
from igs_dagster.core.text import one_line
from igs_dagster.defs.failures import run_failure_reasons

WILL_RETRY_TAG = "dagster/will_retry"
STORY_OUTCOMES = {"passed": "success", "failed": "failure", "skipped": "warning"}


def notifier(settings: Settings) -> Notifier:
    return Notifier(settings.notify, settings.notify_db)


def _materialized(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    """asset name -> its metadata values, for the assets this run materialized."""
    found: dict[str, dict] = {}
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        mat = event.step_materialization_data.materialization
        found[mat.asset_key.path[-1]] = {k: v.value for k, v in mat.metadata.items()}
    return found


def note_ready(instance: dg.DagsterInstance, run: dg.DagsterRun, settings: Settings) -> Message | None:
    """The message for a run that wrote a vault note (None for any other run)."""
    from igs_dagster.video.frontmatter import split_frontmatter

    assets = _materialized(instance, run.run_id)
    if "vault_note" not in assets:
        return None
    note = Path(str(assets["vault_note"].get("note") or ""))
    try:
        meta, _ = split_frontmatter(note.read_text(encoding="utf-8"))
    except (OSError, PermanentError):
        meta = {}
    title = one_line(meta.get("title") or assets.get("video_download", {}).get("title")
                     or run.tags.get("dagster/partition") or "video", 200)
    parts = [str(meta["duration"])] if meta.get("duration") else []
    try:
        parts.append(note.relative_to(settings.vault_dir).as_posix())
        link = obsidian_link(settings.vault_dir, note)
    except ValueError:
        parts.append(str(note))
        link = ""
    return Message("note.ready", f"Note ready: {title}", " · ".join(parts) + (f"\n{link}" if link else ""),
                   "success")


def retry_command(key: str) -> str:
    """What the CLI says too: `igs retry` queues a new run through the inbox (a run key is never
    reused, so `igs send` of the same URL would start none). It works as written in any shell
    where `igs` is on PATH (the set-up links it into ~/.local/bin), whatever the folder."""
    return f"igs retry {key}"


def video_failed(instance: dg.DagsterInstance, run: dg.DagsterRun, settings: Settings) -> Message | None:
    key = run.tags.get("dagster/partition")
    if key is None or run.job_name.startswith("loop_"):
        return None
    reasons = run_failure_reasons(instance, run.run_id, limit=1000)  # commands in it stay whole
    step, reason = next(((s, r) for s, r in reasons.items() if s != "(run)"),
                        ("(run)", reasons.get("(run)") or "run failed"))
    source = None
    if settings.queue_db.exists():
        from igs_dagster.core.inbox import EventQueue

        source = EventQueue(settings.queue_db).get_source(key)
    name = one_line((source.title if source else None) or key, 200)
    where = f" ({source.location})" if source else ""
    stage = step.split("[")[0]
    from igs_dagster.video.waiting import WaitingVideos

    waiting = WaitingVideos(settings.waiting_db).get(key)
    if waiting is not None:  # a live stream or premiere: not a failure, queued again when due
        return Message("video.failed", f"Video waiting: {name}",
                       f"{one_line(waiting.reason, 300)}{where}", "info")
    return Message("video.failed", f"Video failed: {name}",
                   f"{stage}: {one_line(reason, 1000)}{where}\nretry: {retry_command(key)}", "failure")


def loop_messages(settings: Settings, run: dg.DagsterRun, failed: bool) -> list[tuple[str, Message]]:
    """(key, message) for each story outcome of the run's loop, and its end when it ended
    (a run that failed for good ends its loop: `loop_failure_sensor` marks it failed)."""
    from igs_dagster.defs.loop.sensors import _loop_id
    from igs_dagster.loop.state import TERMINAL, load_loop

    loop_id = _loop_id(run)
    if loop_id is None:
        return []
    try:
        state = load_loop(settings.loops_dir, loop_id)
    except PermanentError:
        return []
    out = []
    for story in state.stories.values():
        if story.status in STORY_OUTCOMES:
            tries = len(story.attempts)
            out.append((f"loop:{loop_id}:story:{story.id}:{story.status}", Message(
                "loop.story", f"Loop story {story.status}: {one_line(story.title, 120)}",
                f"{story.id} after {tries} attempt{'s' * (tries != 1)} · loop {loop_id} · "
                f"branch {state.branch}", STORY_OUTCOMES[story.status])))
    status = state.status if state.status in TERMINAL else ("failed" if failed else None)
    if status:
        counts = {s: sum(1 for r in state.stories.values() if r.status == s)
                  for s in ("passed", "failed", "skipped", "pending")}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no stories"
        reason = f"\n{one_line(state.error or state.stop_reason, 300)}" if (state.error or state.stop_reason) else ""
        out.append((f"loop:{loop_id}:finished", Message(
            "loop.finished", f"Loop {status}: {summary}",
            f"loop {loop_id} · branch {state.branch}{reason}",
            "success" if status == "complete" and not counts["failed"] else "warning")))
    return out


def notify_run(instance: dg.DagsterInstance, run: dg.DagsterRun, settings: Settings) -> list[str]:
    """Send what a finished run has to say; returns each send's outcome (for logs and tests)."""
    sender = notifier(settings)
    if not sender.enabled:
        return []
    failed = run.status == dg.DagsterRunStatus.FAILURE
    if failed and run.tags.get(WILL_RETRY_TAG) == "true":
        return []
    messages: list[tuple[str, Message]] = []
    if run.job_name.startswith("loop_"):
        messages = loop_messages(settings, run, failed)
    elif failed:
        message = video_failed(instance, run, settings)
        messages = [(f"run:{run.run_id}:failed", message)] if message else []
    else:
        message = note_ready(instance, run, settings)
        messages = [(f"run:{run.run_id}:note", message)] if message else []
    return [sender.send(key, message) for key, message in messages]
