"""Run-worker watchdog: fail runs whose worker process died without a word.

Dagster's DefaultRunLauncher (one process per run on the daemon's machine) cannot health-check
its run workers, so run monitoring never notices a worker killed by SIGKILL, the OOM killer or a
crash of the interpreter. Only the code server that spawned the worker sees its child die, and
only while that server itself lives: when it is gone too (the daemon restarted or was killed
and its code server went with it, a process tree, container or machine went down) the run stays
STARTED forever, holds its pool slot (`gpu`), and `run_retries` never sees a failure to retry.

This sensor looks at every STARTED run the DefaultRunLauncher launched on this machine, finds
its worker's pid in the run's own engine event ("Started process for run (pid: N)", metadata
`pid`) and checks that process. Only when the worker is certainly gone is the run reported
failed (reason UNEXPECTED_TERMINATION, with a one-paragraph message), which lets `run_retries`
re-execute it from the failed step, and its pool slots are freed at once (run monitoring's
`free_slots_after_run_end_seconds` would free them too, a pass or two later). A run is left
alone when:

- another launcher is configured, or the run was not launched by the DefaultRunLauncher (no
  grpc-info tag: `dagster job execute`, `execute_in_process`), or through a code server on
  another machine (grpc host not local);
- the watchdog saw its worker alive earlier from another host (tag `igs/worker_host`, which
  also records the boot: a worker seen before the machine restarted is gone);
- the pid belongs to a process that started well *before* the worker reported (another pid
  namespace: a container, a different machine) - undecidable, so no action;
- the run finished between the look-up and the check (status read again before acting).

"Gone" means: no such process, a zombie, or a process with that pid that started after the
worker had already reported (the pid was reused). The process table is read through
core.processes (psutil).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import dagster as dg

from igs_dagster.core.process_groups import process_info
from igs_dagster.dagster_compat import GRPC_INFO_TAG, free_pool_slots, report_worker_gone

WATCHDOG_INTERVAL_S = 30
HOST_TAG = "igs/worker_host"
STARTED_MESSAGE = "Started process for run"
# The worker's process exists before it writes its "started" event: allow that much start-up
# (a loaded machine importing the code location) before calling the pid someone else's.
MAX_STARTUP_S = 600.0
# Clock slack between the kernel's process start time and the event's timestamp.
CLOCK_SLACK_S = 60.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}


# ---------------------------------------------------------------------------------------------
# the worker's process


class Worker(Enum):
    ALIVE = "alive"
    GONE = "gone"
    UNKNOWN = "unknown"


def worker_state(pid: int, reported_at: float) -> tuple[Worker, str]:
    """Is the worker that reported `pid` at `reported_at` (epoch s) still running here?"""
    info = process_info(pid)
    if info is None:
        return Worker.GONE, "no such process"
    if info.exited:
        return Worker.GONE, "the process exited (zombie)"
    if info.started_at > reported_at + CLOCK_SLACK_S:
        lag = info.started_at - reported_at
        return Worker.GONE, f"pid {pid} now belongs to a process started {lag:.0f}s after the worker reported"
    if info.started_at < reported_at - MAX_STARTUP_S:
        return Worker.UNKNOWN, (
            f"pid {pid} belongs to a process started {reported_at - info.started_at:.0f}s before "
            "the worker reported: not this machine's worker"
        )
    return Worker.ALIVE, "running"


@dataclass(frozen=True)
class Host:
    name: str
    boot: str  # Linux boot id ("" elsewhere): after a reboot no worker of the last boot lives

    @classmethod
    def here(cls) -> Host:
        try:
            boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            boot = ""
        return cls(socket.gethostname(), boot)

    def tag(self, run_id: str) -> str:
        """The `igs/worker_host` value: which machine (and boot) runs this run's worker.
        It names the run, because a retry copies its parent's tags."""
        return f"{self.name} boot={self.boot or '-'} run={run_id}"

    @classmethod
    def from_tag(cls, value: str | None, run_id: str) -> Host | None:
        parts = (value or "").split()
        if len(parts) != 3 or parts[2] != f"run={run_id}" or not parts[1].startswith("boot="):
            return None  # absent, or inherited from the run this one retries
        boot = parts[1].removeprefix("boot=")
        return cls(parts[0], "" if boot == "-" else boot)


def _is_local(grpc_info: dict) -> bool:
    if grpc_info.get("socket"):
        return True  # a unix socket: the code server, and its run workers, are on this machine
    host = str(grpc_info.get("host") or "").lower()
    return host in LOCAL_HOSTS or host in {socket.gethostname().lower(), socket.getfqdn().lower()}


# ---------------------------------------------------------------------------------------------
# Dagster


@dataclass(frozen=True)
class Verdict:
    run_id: str
    action: str  # "failed", "alive", "skip"
    reason: str


def _worker_event(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, timestamp) of the run's latest "Started process for run" engine event."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=False
    ).records
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        data = event.engine_event_data if event is not None else None
        message = (event.message if event is not None else None) or entry.user_message or ""
        if data is None or "pid" not in (data.metadata or {}) or not message.startswith(STARTED_MESSAGE):
            continue
        try:
            return int(str(data.metadata["pid"].value)), entry.timestamp
        except ValueError:
            return None
    return None


def inspect_run(instance: dg.DagsterInstance, run: dg.DagsterRun, here: Host) -> Verdict:
    """Check one STARTED run; report it failed when its worker is certainly gone."""
    raw = run.tags.get(GRPC_INFO_TAG)
    if not raw:
        return Verdict(run.run_id, "skip", "not launched by the DefaultRunLauncher")
    try:
        grpc_info = json.loads(raw)
    except ValueError:
        return Verdict(run.run_id, "skip", "unreadable grpc info tag")
    if not _is_local(grpc_info):
        return Verdict(run.run_id, "skip", f"launched through a code server on {grpc_info.get('host')}")
    seen = Host.from_tag(run.tags.get(HOST_TAG), run.run_id)
    if seen is not None and seen.name != here.name:
        return Verdict(run.run_id, "skip", f"worker runs on {seen.name}")
    found = _worker_event(instance, run.run_id)
    if found is None:
        return Verdict(run.run_id, "skip", "worker has not reported its pid yet")
    pid, reported_at = found
    if seen is not None and seen.boot and here.boot and seen.boot != here.boot:
        state, why = Worker.GONE, "the machine restarted since the worker was seen running"
    else:
        state, why = worker_state(pid, reported_at)
    if state is Worker.ALIVE:
        if seen is None:
            instance.add_run_tags(run.run_id, {HOST_TAG: here.tag(run.run_id)})
        return Verdict(run.run_id, "alive", f"pid {pid} running")
    if state is Worker.UNKNOWN:
        return Verdict(run.run_id, "skip", why)

    current = instance.get_run_by_id(run.run_id)
    if current is None or current.status != dg.DagsterRunStatus.STARTED:
        status = current.status.value if current is not None else "deleted"
        return Verdict(run.run_id, "skip", f"finished meanwhile ({status})")
    message = (
        f"Run worker process {pid} on {socket.gethostname()} is gone ({why}) while its run was "
        "still STARTED: it was killed (SIGKILL, out of memory) or crashed without reporting. "
        "Marked failed by the run_worker_watchdog (sensor igs_watchdog), so run retries can re-execute it "
        "from the failed step and its pool slots are freed."
    )
    report_worker_gone(instance, current, message)
    # The dead worker can never give back its pool slots (`gpu`): free them now rather than
    # after run monitoring's next pass, so the retry's transcription need not wait for it.
    free_pool_slots(instance, run.run_id)
    return Verdict(run.run_id, "failed", f"pid {pid}: {why}")


def check_started_runs(instance: dg.DagsterInstance, limit: int = 500) -> list[Verdict]:
    """Inspect every STARTED run (the sensor's body, callable on its own)."""
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        return []
    here = Host.here()
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=limit
    )
    verdicts = []
    for record in records:
        try:
            verdicts.append(inspect_run(instance, record.dagster_run, here))
        except Exception as err:  # one unreadable run must not stop the others
            verdicts.append(Verdict(record.dagster_run.run_id, "skip", f"check failed: {err}"))
    return verdicts


def watchdog_part(instance: dg.DagsterInstance, log) -> str:
    """One look at every STARTED run (every WATCHDOG_INTERVAL_S, from the `igs_watchdog` sensor)."""
    launcher = type(instance.run_launcher).__name__
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        return f"{launcher} checks its own run workers"
    verdicts = check_started_runs(instance)
    for verdict in verdicts:
        if verdict.action == "failed":
            log.warning(f"run {verdict.run_id} marked failed: {verdict.reason}")
        elif verdict.action == "skip":
            log.info(f"run {verdict.run_id} not checked: {verdict.reason}")
    failed = sum(v.action == "failed" for v in verdicts)
    alive = sum(v.action == "alive" for v in verdicts)
    return f"{len(verdicts)} started runs: {alive} workers alive, {failed} gone and marked failed"
