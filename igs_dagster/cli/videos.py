"""`igs videos|retry` and what `igs send` says after queueing: the truth about each video
(done with its note, in progress, failed with the reason and the retry command), a retry that
goes through the same inbox and sensor as a first send, and `--wait` (cli/wait.py)."""

from __future__ import annotations

import argparse
import sys

from igs_dagster.cli.common import count, print_json
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings
from igs_dagster.core.text import table

INGEST_EVENTS = ("video.download", "transcript.process")


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
        from igs_dagster.cli.wait import follow_again

        raise PermanentError(f"{key} is in progress (run {state.run_id[:8]}), not retried while "
                             f"it runs: {follow_again([key], settings)}")
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
    from igs_dagster.core.inbox import Accepted

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
    """The end of every `igs send`/`igs retry`: the no-daemon line (once), or with --wait
    each queued video followed to its note or failure (cli/wait.py); 1 if any failed."""
    out = out or sys.stdout  # looked up now: tests and callers may have replaced it
    if wait and follow:
        from igs_dagster.cli.wait import wait_for

        return wait_for(follow, settings, timeout_s, out)
    hint = daemon_hint(settings) if follow else None
    if hint:
        print(hint, file=out)
    return 0


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


def _clip_middle(text: str, limit: int) -> str:
    """A long reason clipped in its middle: its step in front, and its end (where the cause and
    "(after 4 attempts)" are) kept."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]}…{text[len(text) - (limit - head - 1):]}"


def cmd_videos(args: argparse.Namespace, settings: Settings) -> int:
    videos = list_videos(settings, args.limit)
    if args.json:
        print_json(videos)
        return 0
    if not videos:
        print("no videos yet: `igs send URL`")
        return 0
    rows = [[v["key"], (v["title"] or "-")[:50], v["status"], _fmt_duration(v["duration_s"]),
             v["note"] or _clip_middle(v["reason"] or "-", 140)] for v in videos]
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
