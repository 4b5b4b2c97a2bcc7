"""A real deployment for the benchmarks: the tests' DagsterEnv (temp DAGSTER_HOME with the
project's dagster.yaml, the real `dagster-daemon`), a loopback HTTP media server, and helpers
that read a run's timeline from the instance's event log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from igs_dagster_tests.dagster_env import DagsterEnv

FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
STEPS = ("video_download", "video_archive", "transcript", "vault_note", "enriched_summary")


@contextmanager
def deployment(root: Path, daemon: bool = True, **env: str) -> Iterator[DagsterEnv]:
    """A fresh deployment under `root` (daemon started and stopped around the block)."""
    dep = DagsterEnv.create(root, **env)
    if daemon:
        dep.start_daemon()
    try:
        yield dep
    finally:
        dep.stop_daemon()


def key_for(url: str) -> str:
    from igs_dagster.video.ids import parse_source

    return parse_source(url).key


def runs_for(instance: dg.DagsterInstance, key: str) -> list:
    return list(instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": key})))


def wait_run(dep: DagsterEnv, instance: dg.DagsterInstance, key: str, timeout: float = 1800):
    """The finished run record for partition `key`; AssertionError if it did not succeed."""

    def done():
        finished = [r for r in runs_for(instance, key) if r.dagster_run.status in FINISHED]
        return finished[0] if finished else None

    record = dep.wait_for(done, timeout, f"run for {key}")
    if record.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
        raise AssertionError(
            f"run {record.dagster_run.run_id} for {key} failed:\n"
            + dep.igs("run", record.dagster_run.run_id).stdout[-3000:]
        )
    return record


@dataclass
class Timeline:
    """Timestamps (epoch seconds) of one run's events."""

    run_id: str
    created: float  # the run record was written (queued)
    enqueued: float | None
    starting: float | None  # the daemon dequeued and launched it
    started: float | None  # the run worker began executing
    success: float | None
    steps: dict[str, tuple[float, float]]  # step -> (STEP_START, STEP_SUCCESS)
    events: int
    event_bytes: int
    engine_logs: int

    def phases(self) -> dict[str, float]:
        """Seconds in each phase, from queued to the run's end."""
        out: dict[str, float] = {}
        first = self.enqueued or self.created
        if self.starting:
            out["queued → dequeued (run coordinator)"] = self.starting - first
        if self.starting and self.started:
            out["launch → run worker started (process start, imports, code load)"] = (
                self.started - self.starting
            )
        prev = self.started
        for step in STEPS:
            if step not in self.steps:
                continue
            start, end = self.steps[step]
            if prev is not None:
                out[f"between steps → {step}"] = start - prev
            out[f"step {step}"] = end - start
            prev = end
        if prev is not None and self.success:
            out["last step → run success"] = self.success - prev
        return out


def timeline(instance: dg.DagsterInstance, run_id: str) -> Timeline:
    record = instance.get_run_record_by_id(run_id)
    assert record is not None
    created = record.create_timestamp.timestamp()
    enqueued = starting = started = success = None
    steps: dict[str, list[float]] = {}
    count = size = logs = 0
    for rec in instance.get_records_for_run(run_id, limit=100_000).records:
        entry = rec.event_log_entry
        count += 1
        size += len(dg.serialize_value(entry))
        event = entry.dagster_event
        if event is None:
            logs += 1
            continue
        kind = event.event_type
        if kind == dg.DagsterEventType.RUN_ENQUEUED:
            enqueued = entry.timestamp
        elif kind == dg.DagsterEventType.RUN_STARTING:
            starting = entry.timestamp
        elif kind == dg.DagsterEventType.RUN_START:
            started = entry.timestamp
        elif kind == dg.DagsterEventType.RUN_SUCCESS:
            success = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_START and event.step_key:
            steps.setdefault(event.step_key, [entry.timestamp, entry.timestamp])[0] = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_SUCCESS and event.step_key:
            steps.setdefault(event.step_key, [entry.timestamp, entry.timestamp])[1] = entry.timestamp
    return Timeline(
        run_id, created, enqueued, starting, started, success,
        {k: (v[0], v[1]) for k, v in steps.items()}, count, size, logs,
    )


def wait_file(path: Path, contains: str, timeout: float = 1800) -> float:
    """mtime of `path` once it contains `contains` (the enriched note)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if contains in path.read_text(encoding="utf-8"):
                return path.stat().st_mtime
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path} never contained {contains!r}")


def note_for(vault: Path, key: str) -> Path | None:
    from igs_dagster.video.frontmatter import split_frontmatter

    for path in (vault / "Resources" / "videos").glob("*.md"):
        try:
            if split_frontmatter(path.read_text(encoding="utf-8"))[0].get("video_id") == key:
                return path
        except Exception:  # noqa: BLE001 - a note being rewritten
            continue
    return None


def instance_bytes(dep: DagsterEnv) -> int:
    """Bytes of the instance's storage on disk (SQLite files under DAGSTER_HOME, WAL too)."""
    total = 0
    for path in dep.home.rglob("*"):
        if path.is_file() and not path.name.endswith((".yaml", ".log")):
            total += path.stat().st_size
    return total


def step_output(dep: DagsterEnv, asset: str, key: str) -> dict:
    """What an asset handed on for a partition (its claim file in the data folder)."""
    from igs_dagster.defs.video.claims import handed

    return handed(dep.data / "media", key, asset)


def run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run worker's process id, from its "Executing steps in process (pid: N)" event."""
    import re

    for rec in instance.get_records_for_run(run_id, limit=200).records:
        message = rec.event_log_entry.user_message or ""
        found = re.search(r"in process \(pid: (\d+)\)", message)
        if found:
            return int(found.group(1))
    return None


@dataclass
class Ingested:
    key: str
    run_id: str
    timeline: Timeline
    note: Path
    queued_to_note_s: float  # RUN_ENQUEUED -> the enriched note's last write
    transcript: dict  # the transcript asset's output (TranscriptInfo.to_json())
    peak_rss_mb: float | None = None


def ingest(
    dep: DagsterEnv, instance: dg.DagsterInstance, url: str, *, timeout: float = 3600,
    watch_rss: bool = False,
) -> Ingested:
    """`igs send URL`, wait for its run (sensor -> queue -> run worker) and the enriched note."""
    from bench.common import peak_rss_mb

    key = key_for(url)
    dep.igs("send", url, check=True)
    peak = None
    if watch_rss:  # follow the run worker's VmHWM until it exits (it is not our child)
        deadline = time.monotonic() + timeout
        pid = None
        while time.monotonic() < deadline:
            runs = runs_for(instance, key)
            if runs and pid is None:
                pid = run_pid(instance, runs[0].dagster_run.run_id)
            if pid is not None:
                value = peak_rss_mb(pid)
                if value is None:
                    break
                peak = value
            elif runs and runs[0].dagster_run.status in FINISHED:
                break
            time.sleep(0.2)
    record = wait_run(dep, instance, key, timeout)
    note = note_for(dep.vault, key)
    assert note is not None, f"no note for {key}"
    mtime = wait_file(note, "enriched_by: builtin", 60)
    tl = timeline(instance, record.dagster_run.run_id)
    return Ingested(
        key, record.dagster_run.run_id, tl, note, mtime - (tl.enqueued or tl.created),
        step_output(dep, "transcript", key), peak,
    )
