"""`igs videos|retry` and what `igs send` says after queueing: the truth about each video
(done with its note, in progress, failed with the reason and the retry command), a retry that
goes through the same inbox and sensor as a first send, and `--wait` with live progress."""

from __future__ import annotations

import argparse
import re
import sys
import time

from igs_dagster.cli.common import count, print_json
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings
from igs_dagster.core.text import table

INGEST_EVENTS = ("video.download", "transcript.process")
PROGRESS_PREFIXES = ("download ", "archive ", "transcribe ")
POLL_S = 1.0


def _instance(settings: Settings):
    from igs_dagster.defs.instance import open_instance

    return open_instance(settings)


def resolve_key(ref: str, settings: Settings) -> str:
    """A partition key, or a URL/file sent before, to the key it was queued under."""
    from igs_dagster.core.inbox import EventQueue
    from igs_dagster.video.ids import parse_source

    queue = EventQueue(settings.queue_db)
    ref = ref.strip()
    if settings.queue_db.exists() and queue.get_source(ref) is not None:
        return ref
    key = parse_source(ref).key
    if not settings.queue_db.exists() or queue.get_source(key) is None:
        raise PermanentError(f"{ref!r} was never sent: send it with `igs send {ref}`")
    return key


def known(key: str, settings: Settings) -> bool:
    from igs_dagster.core.inbox import EventQueue

    return settings.queue_db.exists() and EventQueue(settings.queue_db).get_source(key) is not None


def retry(key: str, settings: Settings, instance=None) -> str:
    """Queue a new run of `key` through the inbox (refused while a run of it is in progress)."""
    from igs_dagster.cli.video_state import video_state
    from igs_dagster.core.inbox import EventQueue

    instance = instance or _instance(settings)
    state = video_state(instance, key)
    if state.status == "running":
        raise PermanentError(f"{key} is in progress (run {state.run_id[:8]}): "
                             f"wait for it with `igs retry --wait {key}` once it ends")
    queued = EventQueue(settings.queue_db).requeue(key, INGEST_EVENTS)
    if queued is None:
        raise PermanentError(f"{key} has no queued download or transcript to retry")
    _, n = queued
    return f"queued retry {n} of {key}"


def send_line(accepted, settings: Settings, force: bool, instance_box: list) -> tuple[str, str]:
    """What `igs send` prints for one accepted event (a known key gets its real state) and
    what to wait for: "run" (a run comes or is in progress), "done" or "failed"."""
    if not accepted.known:
        return accepted.message, "run"
    if not (settings.dagster_home / "dagster.yaml").is_file():  # Dagster never ran: no run yet
        from igs_dagster.cli.video_state import VideoState, describe

        return describe(VideoState(accepted.key, "queued")), "run"
    if not instance_box:
        instance_box.append(_instance(settings))
    if force:
        return retry(accepted.key, settings, instance_box[0]), "run"
    from igs_dagster.cli.video_state import describe, video_state

    state = video_state(instance_box[0], accepted.key)
    outcome = {"done": "done", "failed": "failed", "canceled": "failed"}.get(state.status, "run")
    return describe(state), outcome


def send_known(key: str, settings: Settings, force: bool, instance_box: list) -> tuple[str, str]:
    """`igs send` of a key queued before (a URL sent again, a playlist entry known already):
    with `force` a retry as `igs retry` queues it, else its real state; see send_line."""
    from igs_dagster.intake import Accepted

    if not force:
        return send_line(Accepted(None, "video.download", key, "", known=True), settings, False,
                         instance_box)
    if not instance_box:
        instance_box.append(_instance(settings))
    return retry(key, settings, instance_box[0]), "run"


def send_url(event, key: str, settings: Settings, force: bool,
             instance_box: list) -> tuple[str, str]:
    """`igs send` of one URL: accepted into the inbox, or with `force` a retry if it was sent
    before. Returns (line to print, outcome as send_line)."""
    from igs_dagster.intake import accept

    if force and known(key, settings):
        return send_known(key, settings, True, instance_box)
    return send_line(accept(event, settings), settings, False, instance_box)


def daemon_hint(settings: Settings) -> str | None:
    from igs_dagster.cli.daemon_probe import NO_DAEMON_HINT, local_daemon_pids

    return None if local_daemon_pids(settings.dagster_home) else NO_DAEMON_HINT


def finish_send(follow: list[str], settings: Settings, wait: bool, timeout_s: float | None,
                out=None) -> int:
    """The end of every `igs send`/`igs retry`: the no-daemon line (once), then with --wait
    each queued video followed to its note or failure; 1 if any failed."""
    out = out or sys.stdout  # looked up now: tests and callers may have replaced it
    hint = daemon_hint(settings) if follow else None
    if hint:
        print(hint, file=out)
    return wait_for(follow, settings, timeout_s, out) if wait and follow else 0


# ---- --wait ----------------------------------------------------------------------------------

def step_label(step_key: str) -> str:
    """`vault_note_vault_note_check` (an asset check's step) -> `vault_note check`."""
    match = re.fullmatch(r"(\w+?)_\1_check", step_key)
    return f"{match[1]} check" if match else step_key


def _progress_lines(instance, run_id: str, cursor: str | None) -> tuple[list[str], str | None]:
    """New step starts and progress messages of a run since `cursor`."""
    import dagster as dg

    result = instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
    lines = []
    for record in result.records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is not None and event.event_type == dg.DagsterEventType.STEP_START:
            lines.append(f"{step_label(event.step_key)}: started")
        elif event is None and entry.user_message.startswith(PROGRESS_PREFIXES):
            lines.append(f"{entry.step_key or ''}: {entry.user_message}".lstrip(": "))
    return lines, result.cursor or cursor


def wait_for(keys: list[str], settings: Settings, timeout_s: float | None = None,
             out=sys.stdout) -> int:
    """Follow each key's next run to its end; 0 if every video is done, 1 otherwise."""
    from igs_dagster.cli.video_state import ingest_runs, video_state

    instance = _instance(settings)
    from igs_dagster.cli.video_state import ACTIVE

    # a run that ended before we started waiting is an old one: follow a run in progress or
    # the next one
    before = {key: {r.dagster_run.run_id for r in ingest_runs(instance, key, limit=50)
                    if r.dagster_run.status not in ACTIVE} for key in keys}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    worst = 0
    failed: list[str] = []
    for key in keys:
        run_id, cursor, hinted = None, None, False
        while True:
            if run_id is None:
                runs = [r for r in ingest_runs(instance, key, limit=5)
                        if r.dagster_run.run_id not in before[key]]
                if runs:
                    run_id = runs[-1].dagster_run.run_id  # the first new run
                    print(f"{key}: run {run_id[:8]} started", file=out, flush=True)
                elif not hinted:
                    hinted = True
                    print(f"{key}: waiting for the sensor to start a run", file=out, flush=True)
            if run_id is not None:
                lines, cursor = _progress_lines(instance, run_id, cursor)
                for line in lines:
                    print(f"{key}: {line}", file=out, flush=True)
                record = instance.get_run_record_by_id(run_id)
                from igs_dagster.cli.video_state import state_of_run

                state = state_of_run(instance, key, record)
                if state.status != "running":
                    state = video_state(instance, key)
                    if state.status == "done":
                        print(f"{key}: done → {state.note}", file=out, flush=True)
                    elif state.status == "waiting":  # not a failure: it is queued again when due
                        print(f"{key}: {state.reason}", file=out, flush=True)
                    else:
                        print(f"{key}: {state.status}: {state.reason}; "
                              f"retry with `igs retry {key}`", file=out, flush=True)
                        worst = 1
                        failed.append(key)
                    break
            if deadline is not None and time.monotonic() > deadline:
                raise PermanentError(f"gave up waiting for {key} after {timeout_s:.0f} s "
                                     "(it goes on: `igs videos` shows where it stands)")
            time.sleep(POLL_S)
    if len(keys) > 1:  # a playlist, several URLs: the outcome in one line
        print(f"{len(keys)} videos: {len(keys) - len(failed)} done, {len(failed)} failed"
              + (f" (retry with `igs retry {' '.join(failed)}`)" if failed else ""),
              file=out, flush=True)
    return worst


# ---- commands --------------------------------------------------------------------------------

def list_videos(settings: Settings, limit: int = 1000) -> list[dict]:
    """Every video the instance knows, newest first: key, title, status, duration, note."""
    import dagster as dg

    from igs_dagster.cli.video_state import _meta, ingest_runs, state_of_run

    instance = _instance(settings)
    latest: dict[str, object] = {}
    for record in ingest_runs(instance, limit=limit * 3):
        key = record.dagster_run.tags.get("dagster/partition")
        if key and key not in latest:
            latest[key] = record
    rows = {}
    for asset in ("video_download", "vault_note"):
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=limit * 3).records
        for rec in records:
            key = rec.partition_key
            if key and (asset, key) not in rows:
                rows[(asset, key)] = rec
    partitions = instance.get_dynamic_partitions("videos")
    videos = []
    for key in partitions:
        state = state_of_run(instance, key, latest.get(key))
        download = rows.get(("video_download", key))
        note = rows.get(("vault_note", key))
        state.title = _meta(download, "title")
        duration = _meta(download, "duration_s")
        state.duration_s = float(duration) if duration else None
        state.note = str(_meta(note, "note")) if _meta(note, "note") else None
        run = latest.get(key)
        sort = run.create_timestamp.timestamp() if run is not None else 0.0
        videos.append((sort, state.to_json()))
    videos.sort(key=lambda item: item[0], reverse=True)
    return [v for _, v in videos[:limit]]


def _fmt_duration(seconds: float | None) -> str:
    if not seconds:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def cmd_videos(args: argparse.Namespace, settings: Settings) -> int:
    videos = list_videos(settings, args.limit)
    if args.json:
        print_json(videos)
        return 0
    if not videos:
        print("no videos yet: `igs send URL`")
        return 0
    rows = [[v["key"], (v["title"] or "-")[:50], v["status"], _fmt_duration(v["duration_s"]),
             v["note"] or (v["reason"] or "-")[:80]] for v in videos]
    print(table(rows, ["KEY", "TITLE", "STATUS", "DURATION", "NOTE / REASON"]))
    return 0


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    keys = [resolve_key(ref, settings) for ref in args.refs]  # all valid, or nothing queued
    instance = _instance(settings)
    for key in keys:
        print(retry(key, settings, instance))
    return finish_send(keys, settings, args.wait, args.timeout)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("videos", help="every video: key, title, status, duration, note (newest first)")
    p.add_argument("--limit", type=count(1), default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_videos)
    p = sub.add_parser("retry", help="run a failed (or any finished) video again, by key or URL")
    p.add_argument("refs", nargs="+", metavar="KEY|URL")
    p.add_argument("--wait", action="store_true", help="follow the run; exit 1 if it fails")
    p.add_argument("--timeout", type=count(1), help="with --wait: give up after this many seconds")
    p.set_defaults(func=cmd_retry)
