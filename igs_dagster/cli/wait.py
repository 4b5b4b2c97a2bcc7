"""`igs send|retry --wait`: follow each queued video to its note or its failure, live.

Every video is followed at once (a second video's retries show while the first one's run is
still going): step starts, download and transcription progress, each retry as Dagster decides
it ("video_download: attempt 2 of 4 in 10 s: <why attempt 1 failed>"), then the note or the
cause of the last failed attempt. While no run has started, it says why nothing moves: no
daemon at all (then it stops, exit 1, rather than wait for ever), or a sensor whose ticks fail
or are skipped for invalid settings (it keeps waiting and says so once per change). Ctrl-C
stops the waiting, not the work, and says how to follow it again.
"""

from __future__ import annotations

import re
import shlex
import sys
import time

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings

PROGRESS_PREFIXES = ("download ", "archive ", "transcribe ")
POLL_S = 1.0
LOOKAHEAD = 8  # videos without a run looked at per poll (a 500-entry playlist is not 500 queries)
STALL_CHECK_S = 5.0


def step_label(step_key: str) -> str:
    """`vault_note_vault_note_check` (an asset check's step) -> `vault_note check`."""
    match = re.fullmatch(r"(\w+?)_\1_check", step_key)
    return f"{match[1]} check" if match else step_key


class _Progress:
    """What `--wait` prints of one run: step starts, progress messages, and each retry."""

    def __init__(self, instance, run_id: str):
        from igs_dagster.defs.failures import max_attempts

        self.instance, self.run_id, self.cursor = instance, run_id, None
        run = instance.get_run_by_id(run_id)
        self.allowed = max_attempts(instance, run) if run is not None else {}
        self.attempts: dict[str, int] = {}

    def lines(self) -> list[str]:
        import dagster as dg

        from igs_dagster.defs.failures import retry_line

        result = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=1000)
        self.cursor = result.cursor or self.cursor
        lines = []
        for record in result.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is not None and event.event_type == dg.DagsterEventType.STEP_START:
                if not self.attempts.get(event.step_key):  # a retry was announced already
                    lines.append(f"{step_label(event.step_key)}: started")
            elif event is not None and event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
                step = event.step_key or "?"
                self.attempts[step] = self.attempts.get(step, 0) + 1
                lines.append(f"{step_label(step)}: "
                             f"{retry_line(event, self.attempts[step] + 1, self.allowed.get(step))}")
            elif event is None and entry.user_message.startswith(PROGRESS_PREFIXES):
                lines.append(f"{entry.step_key or ''}: {entry.user_message}".lstrip(": "))
        return lines


class _Follow:
    """One video: its next run found, followed, and its end printed."""

    def __init__(self, key: str, old_runs: set[str]):
        self.key, self.old_runs = key, old_runs
        self.run_id: str | None = None
        self.progress: _Progress | None = None
        self.outcome: str | None = None  # done | failed | waiting (due later) | queued (no daemon)

    def poll(self, instance, out) -> None:
        from igs_dagster.cli.video_state import ingest_runs, state_of_run, video_state

        if self.run_id is None:
            runs = [r for r in ingest_runs(instance, self.key, limit=5)
                    if r.dagster_run.run_id not in self.old_runs]
            if not runs:
                return
            self.run_id = runs[-1].dagster_run.run_id  # the first new run
            self.progress = _Progress(instance, self.run_id)
            print(f"{self.key}: run {self.run_id[:8]} started", file=out, flush=True)
        for line in self.progress.lines():
            print(f"{self.key}: {line}", file=out, flush=True)
        state = state_of_run(instance, self.key, instance.get_run_record_by_id(self.run_id))
        if state.status == "running":
            return
        state = video_state(instance, self.key)
        if state.status == "done":
            self.outcome = "done"
            print(f"{self.key}: done → {state.note}", file=out, flush=True)
        elif state.status == "waiting":  # not a failure: it is queued again when due
            self.outcome = "waiting"
            print(f"{self.key}: {state.reason}", file=out, flush=True)
        else:
            self.outcome = "failed"
            hint = "" if "igs retry" in (state.reason or "") else f"; retry with `igs retry {self.key}`"
            print(f"{self.key}: {state.status}: {state.reason}{hint}", file=out, flush=True)


def follow_again(keys: list[str], settings: Settings) -> str:
    """How to pick up waiting again: `igs send --wait <what was sent>` (as the user sent it,
    quoted for the shell), or `igs videos` for sources that cannot be sent again as they are."""
    from igs_dagster.core.inbox import EventQueue

    queue = EventQueue(settings.queue_db)
    again = []
    for key in keys:
        source = queue.get_source(key) if settings.queue_db.exists() else None
        if source is None or source.kind not in ("youtube", "url", "file"):
            return "`igs videos` shows where each one stands"
        again.append(shlex.quote(source.location))
    return f"`igs send --wait {' '.join(again)}` follows again, `igs videos` shows where they stand"


def _stall(instance, settings: Settings) -> tuple[str, bool] | None:
    """Why no run starts, if something visibly stops it: (reason, give up)."""
    from igs_dagster.cli.daemon_probe import NO_DAEMON_HINT, local_daemon_pids
    from igs_dagster.cli.run_format import INBOX_SENSOR, daemon_view
    from igs_dagster.cli.run_report import last_tick
    from igs_dagster.core import service_lock

    tick, problem = last_tick(instance, INBOX_SENSOR)
    pids = local_daemon_pids(settings.dagster_home)
    starting = service_lock.holder(settings.data_dir)
    daemon = daemon_view(pids, tick, None, service_lock.lock_path(settings.data_dir).exists())
    if not daemon["running"] and starting is None:
        return NO_DAEMON_HINT, True
    if problem:
        return f"the igs_events sensor starts no runs: {problem}", False
    if not daemon["running"]:
        return f"igs dev (pid {starting.get('pid')}) is starting its daemon", False
    return None


def wait_for(keys: list[str], settings: Settings, timeout_s: float | None = None,
             out=sys.stdout) -> int:
    """Follow each key's next run to its end; 0 if every video is done, 1 otherwise."""
    from igs_dagster.cli.video_state import ACTIVE, ingest_runs
    from igs_dagster.defs.instance import open_instance

    instance = open_instance(settings)
    # a run that ended before we started waiting is an old one: follow a run in progress or
    # the next one
    follows = [_Follow(key, {r.dagster_run.run_id for r in ingest_runs(instance, key, limit=50)
                             if r.dagster_run.status not in ACTIVE}) for key in keys]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    said: str | None = None
    next_check = 0.0
    try:
        while pending := [f for f in follows if f.outcome is None]:
            without_run = [f for f in pending if f.run_id is None]
            for follow in [f for f in pending if f.run_id is not None] + without_run[:LOOKAHEAD]:
                follow.poll(instance, out)
            waiting = [f.key for f in follows if f.outcome is None and f.run_id is None]
            if waiting and time.monotonic() >= next_check:
                next_check = time.monotonic() + STALL_CHECK_S
                stall = _stall(instance, settings)
                reason = stall[0] if stall else "waiting for the sensor to start a run"
                if reason != said:
                    said = reason
                    print(f"{', '.join(waiting[:3])}{' …' if len(waiting) > 3 else ''}: {reason}",
                          file=out, flush=True)
                if stall and stall[1]:
                    print(f"not waiting: the video{'s stay' if len(waiting) > 1 else ' stays'} "
                          f"queued; once a daemon runs, {follow_again(waiting, settings)}",
                          file=out, flush=True)
                    for follow in follows:
                        if follow.key in waiting:
                            follow.outcome = "queued"
                    break
            if deadline is not None and time.monotonic() > deadline:
                keys_left = [f.key for f in follows if f.outcome is None]
                raise PermanentError(f"gave up waiting for {', '.join(keys_left)} after "
                                     f"{timeout_s:.0f} s (it goes on: `igs videos` shows where it stands)")
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        left = [f.key for f in follows if f.outcome is None]
        print(f"\nstopped waiting; the work goes on in the daemon: {follow_again(left, settings)}",
              file=out, flush=True)
        raise
    failed = [f.key for f in follows if f.outcome == "failed"]
    queued = [f.key for f in follows if f.outcome == "queued"]
    later = [f.key for f in follows if f.outcome == "waiting"]
    if len(keys) > 1:  # a playlist, several URLs: the outcome in one line
        done = len(keys) - len(failed) - len(queued) - len(later)
        print(f"{len(keys)} videos: {done} done, {len(failed)} failed"
              + (f", {len(later)} waiting" if later else "")
              + (f", {len(queued)} not started" if queued else "")
              + (f" (retry with `igs retry {' '.join(failed)}`)" if failed else ""),
              file=out, flush=True)
    return 1 if failed or queued else 0
