"""Process groups stopped safely, from this process or another: the process table read through
psutil (Linux and macOS; `process_info`, `group_members`), a group stopped with SIGTERM then
SIGKILL (`stop_process_group`), and the pid file a supervised command is recorded in, so another
process (`igs loop cancel`, a retried step after its runner was SIGKILLed) can stop it:
`kill_from_pid_file`, which acts only on the very process it recorded (pid + start time),
never on a process that reuses the pid."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from igs_dagster.core.fsutil import atomic_write_json
from igs_dagster.core.guard import KILL_SETTLE_S


@dataclass(frozen=True)
class ProcessInfo:
    state: str  # psutil status: "running", "sleeping", "zombie", "dead", ...
    started_at: float  # epoch seconds

    @property
    def exited(self) -> bool:
        return self.state in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def process_info(pid: int) -> ProcessInfo | None:
    """State and start time of `pid` on this machine; None when there is no such process."""
    if pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            return ProcessInfo(proc.status(), proc.create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None if not psutil.pid_exists(pid) else ProcessInfo(psutil.STATUS_ZOMBIE, 0.0)
    except psutil.AccessDenied:
        return ProcessInfo("unknown", 0.0)


def start_time(pid: int) -> float | None:
    """When `pid` started (epoch s), to tell a process from a later one that reuses its pid."""
    info = process_info(pid)
    return info.started_at if info is not None and info.started_at else None


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is `pgid`."""
    members: list[int] = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                continue
            if os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def same_process(pid: int, started: float | None) -> bool | None:
    """Is `pid` still the process that started at `started`? None: no such process."""
    info = process_info(pid)
    if info is None or info.exited:
        return None
    return started is not None and info.started_at > 0 and abs(info.started_at - started) <= 0.5


def stop_process_group(pgid: int, grace_s: float = 5.0, started: float | None = None) -> bool:
    """SIGTERM every live process of group `pgid`, SIGKILL what is left after `grace_s`.

    Returns True if it had to act (some member was alive), False if the group was gone.
    Refuses our own group and pgid <= 1 (those would hit the caller or the whole system).
    `started`: the leader's start time; before each signal the leader, if it lives, must still
    be that process (a group id is never reused while the group has members, but once the
    group is gone a new leader may take the number: it is left alone).
    """
    if pgid <= 1 or pgid == os.getpgrp():
        raise ValueError(f"refusing to signal process group {pgid}")

    def ours() -> bool:
        return started is None or same_process(pgid, started) is not False

    if not group_members(pgid) or not ours():
        return False
    if not killpg(pgid, signal.SIGTERM):
        return False
    deadline = time.monotonic() + max(grace_s, 0.0)
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return True
        time.sleep(0.05)
    if ours():
        killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_SETTLE_S
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


def read_pid_file(pid_file: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(pid_file).read_text(encoding="utf-8"))
        int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def remove_pid_file(pid_file: Path, pid: int) -> None:
    """Remove `pid_file` if it still describes `pid` (a newer run may have replaced it)."""
    data = read_pid_file(pid_file)
    if data is not None and int(data["pid"]) == pid:
        Path(pid_file).unlink(missing_ok=True)


def write_pid_file(pid_file: Path, pid: int, label: str, guard: int) -> None:
    atomic_write_json(pid_file, {
        "pid": pid,
        "pgid": pid,  # a new session: the command leads its own group
        "proc_start": start_time(pid),
        "tool": label,
        "runner_pid": os.getpid(),
        "runner_start": start_time(os.getpid()),
        "guard_pid": guard,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })


def kill_from_pid_file(pid_file: Path, grace_s: float = 5.0) -> bool:
    """Stop the group recorded in `pid_file` (from any process). True if it had to act.

    Acts only on what it recorded: the leader's pid and start time must match (a pid file
    without a start time, or whose pid now belongs to a process that started at another time,
    is stale and left alone), and they are checked again before each signal. A leader that
    exited leaves its group id reserved while members live: those are stopped. Removes the pid
    file once the group is gone.
    """
    pid_file = Path(pid_file)
    data = read_pid_file(pid_file)
    if data is None:
        return False
    pid = int(data["pid"])
    pgid = int(data.get("pgid", pid))
    recorded = data.get("proc_start")
    if pid <= 1 or pgid <= 1 or pgid == os.getpgrp():
        return False
    if recorded is None or same_process(pid, float(recorded)) is False:
        remove_pid_file(pid_file, pid)  # unverifiable, or the pid was reused: not ours
        return False
    acted = stop_process_group(pgid, grace_s, started=float(recorded))
    remove_pid_file(pid_file, pid)
    return acted
