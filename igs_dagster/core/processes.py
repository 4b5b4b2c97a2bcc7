"""Child processes under supervision: the one mechanism agents, loop checks and the watchdog use.

- `run_supervised` starts an argument list (never a shell) in its own session / process group,
  output to a file, optional stdin data; it ends on exit, timeout, a cancel file appearing, or
  any exception in the caller's thread. Then the WHOLE group is stopped (SIGTERM, SIGKILL after
  `grace_s`), so no child or grandchild survives, even one that ignores SIGTERM; descendants
  seen while it ran that left the group (setsid) are stopped too. One whose parent had already
  exited before it was seen (re-parented to init) can still escape: that needs cgroups.
- A pid file records a running group so another process (`igs loop cancel`, or a retried step
  after its runner was SIGKILLed) can stop it: `kill_from_pid_file`, safe against pid reuse.
- `process_info` / `group_members` read the process table through psutil (Linux and macOS).
- `read_tail` gives the redacted end of an output file (redaction before the cut, so a
  secret split by the window is still caught).

No Dagster import here.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from igs_dagster.core.fsutil import atomic_write_bytes, atomic_write_json, atomic_writer
from igs_dagster.core.redact import Redactor

POLL_MAX_S = 0.2  # cancel_file / exit polling period once the run is under way
KILL_SETTLE_S = 5.0  # how long to wait for SIGKILLed processes to disappear


# --------------------------------------------------------------------------- process table


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


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_process_group(pgid: int, grace_s: float = 5.0) -> bool:
    """SIGTERM every live process of group `pgid`, SIGKILL what is left after `grace_s`.

    Returns True if it had to act (some member was alive), False if the group was gone.
    Refuses our own group and pgid <= 1 (those would hit the caller or the whole system).
    """
    if pgid <= 1 or pgid == os.getpgrp():
        raise ValueError(f"refusing to signal process group {pgid}")
    if not group_members(pgid):
        return False
    if not _killpg(pgid, signal.SIGTERM):
        return False
    deadline = time.monotonic() + max(grace_s, 0.0)
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return True
        time.sleep(0.05)
    _killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_SETTLE_S
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


def _tree(pgid: int, leader: int) -> dict[int, psutil.Process]:
    """Members of group `pgid` and all descendants of the leader and of those members,
    wherever their group or session (pi 0.73.1 runs its bash tool detached: setsid)."""
    found: dict[int, psutil.Process] = {}
    roots = [leader, *group_members(pgid)]
    for pid in roots:
        try:
            proc = psutil.Process(pid)
            found.setdefault(pid, proc)
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except psutil.Error:
            continue
    return found


def _stop_strays(tracked: dict[int, psutil.Process], grace_s: float) -> None:
    """SIGTERM, then SIGKILL, tracked descendants that left the group and still run. psutil
    remembers each one's start time, so a pid reused by someone else is never signalled."""

    def alive() -> list[psutil.Process]:
        procs = []
        for proc in tracked.values():
            try:
                if proc.pid != os.getpid() and proc.is_running() and proc.status() not in (
                        psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                    procs.append(proc)
            except psutil.Error:
                continue
        return procs

    for method, wait in (("terminate", grace_s), ("kill", KILL_SETTLE_S)):
        procs = alive()
        if not procs:
            return
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                getattr(proc, method)()
        deadline = time.monotonic() + max(wait, 0.0)
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)


def _stop_all(pgid: int, tracked: dict[int, psutil.Process], grace_s: float) -> None:
    """The group first, then what escaped it (setsid, detached spawns) but was seen running."""
    tracked.update(_tree(pgid, pgid))
    stop_process_group(pgid, grace_s)
    _stop_strays(tracked, grace_s)


# --------------------------------------------------------------------------- pid files


def read_pid_file(pid_file: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(pid_file).read_text(encoding="utf-8"))
        int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _remove_pid_file(pid_file: Path, pid: int) -> None:
    """Remove `pid_file` if it still describes `pid` (a newer run may have replaced it)."""
    data = read_pid_file(pid_file)
    if data is not None and int(data["pid"]) == pid:
        Path(pid_file).unlink(missing_ok=True)


def _write_pid_file(pid_file: Path, pid: int, label: str) -> None:
    atomic_write_json(pid_file, {
        "pid": pid,
        "pgid": pid,  # start_new_session: the child leads its own group
        "proc_start": start_time(pid),
        "tool": label,
        "runner_pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })


def kill_from_pid_file(pid_file: Path, grace_s: float = 5.0) -> bool:
    """Stop the group recorded in `pid_file` (from any process). True if it had to act.

    Safe against pid reuse: the leader's start time is recorded and compared, and a pid is
    never reallocated while its process group still has members. Removes the pid file once
    the group is gone.
    """
    pid_file = Path(pid_file)
    data = read_pid_file(pid_file)
    if data is None:
        return False
    pid = int(data["pid"])
    pgid = int(data.get("pgid", pid))
    if pid <= 1 or pgid <= 1 or pgid == os.getpgrp():
        return False
    recorded = data.get("proc_start")
    current = start_time(pid)
    if recorded is not None and current is not None and abs(current - float(recorded)) > 0.5:
        # The leader's pid now belongs to another process, so the original group is gone.
        _remove_pid_file(pid_file, pid)
        return False
    acted = stop_process_group(pgid, grace_s)
    _remove_pid_file(pid_file, pid)
    return acted


# --------------------------------------------------------------------------- output files


def read_tail(path: Path, redact: Redactor, chars: int) -> str:
    """The last `chars` characters of `path`, redacted. A margin before the window is read and
    redacted with it, so a secret straddling the window's start is still matched."""
    want = chars * 4 + redact.max_bytes + 4
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - want))
            data = handle.read()
    except OSError:
        return ""
    return redact(data.decode("utf-8", "replace"))[-chars:]


def redact_file(path: Path, redact: Redactor) -> None:
    """Rewrite a stored output without secrets (only when one actually appears), streaming:
    any size, and a secret split across read chunks is still found. Atomic, 0600."""
    if not redact:
        return
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            keep = b""
            while chunk := handle.read(1 << 20):
                if redact.contains_secret(keep + chunk):
                    break
                keep = chunk[-redact.max_bytes:]
            else:
                return
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        pending = ""
        with atomic_writer(path) as out, open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                safe, pending = redact.split_safe(pending + decoder.decode(chunk))
                out.write(safe.encode("utf-8", "surrogateescape"))
            rest = redact(pending + decoder.decode(b"", final=True))
            out.write(rest.encode("utf-8", "surrogateescape"))
    except OSError:
        return


class _OutputStreamer:
    """Feed new output to `on_output` as redacted text, holding back possible secret halves."""

    def __init__(self, path: Path, redact: Redactor, on_output: Callable[[str], None], skip: int):
        self._file = open(path, "rb")  # noqa: SIM115 - closed in finish()/close()
        self._file.seek(skip)  # past our own header: only what the process writes
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._redact = redact
        self._on_output = on_output
        self._pending = ""

    def pump(self) -> None:
        data = self._file.read(1024 * 1024)
        if not data:
            return
        text = self._pending + self._decoder.decode(data)
        safe, self._pending = self._redact.split_safe(text)
        if safe:
            self._on_output(safe)

    def finish(self) -> None:
        try:
            while True:
                before = self._file.tell()
                self.pump()
                if self._file.tell() == before:
                    break
            rest = self._redact(self._pending + self._decoder.decode(b"", final=True))
            self._pending = ""
            if rest:
                self._on_output(rest)
        finally:
            self._file.close()

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------- running


@dataclass
class Finished:
    """How a supervised process ended."""

    returncode: int | None  # None: never started (cancelled before start)
    timed_out: bool
    cancelled: bool
    duration_s: float


class StartError(OSError):
    """The program could not be started (missing, not executable): the caller words it."""


def _leader_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Has the child exited? Leaves it a zombie (not reaped) so its pid/pgid stay reserved
    until the rest of its group has been dealt with."""
    if hasattr(os, "waitid"):
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None
    return proc.poll() is not None


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While running, turn SIGTERM into SystemExit if nobody handles it (main thread only).

    With the default disposition SIGTERM would end the interpreter without running any
    `finally`, leaving the child (in its own session) orphaned. A handler someone else
    installed (Dagster's) is kept: it raises in the caller's thread and our cleanup runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            yield
            return
    except ValueError:
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is _raise:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _feed_stdin(stream: Any, data: bytes) -> None:
    try:
        stream.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the process exited or was stopped before reading everything
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.close()


def run_supervised(
    argv: list[str],
    *,
    cwd: Path,
    output_path: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    executable: str | None = None,
    stdin_data: bytes | None = None,
    header: bytes = b"",
    cancel_file: Path | None = None,
    pid_file: Path | None = None,
    label: str = "",
    grace_s: float = 5.0,
    redact: Redactor | None = None,
    on_output: Callable[[str], None] | None = None,
) -> Finished:
    """Run `argv` under supervision (module doc); stdout+stderr to `output_path` (mode 0600,
    starting with `header`). Raises StartError when the program cannot start.

    `pid_file`: a pid file already there at start is the leftover of a runner that was killed
    hard: its group is stopped first. `cancel_file` present at start: nothing runs.
    `on_output` gets new output as redacted text (`redact` required).
    """
    start = time.monotonic()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if pid_file is not None and Path(pid_file).exists():
        kill_from_pid_file(Path(pid_file), grace_s)
    if cancel_file is not None and Path(cancel_file).exists():
        atomic_write_bytes(output_path, header)
        return Finished(None, False, True, time.monotonic() - start)

    with _sigterm_raises():
        out_fd = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(out_fd, header)
            proc = subprocess.Popen(  # noqa: S603 - argument list, never a shell
                argv,
                executable=executable,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stdout=out_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR):
                raise StartError(err.errno, err.strerror, argv[0]) from None
            raise
        finally:
            os.close(out_fd)

        pgid = proc.pid
        writer = None
        if stdin_data is not None:
            writer = threading.Thread(target=_feed_stdin, args=(proc.stdin, stdin_data),
                                      name=f"stdin-{proc.pid}", daemon=True)
        streamer: _OutputStreamer | None = None
        finished = False
        timed_out = cancelled = False
        tracked: dict[int, psutil.Process] = {}  # the process tree, as seen so far
        try:
            if writer is not None:
                writer.start()
            if pid_file is not None:
                _write_pid_file(Path(pid_file), proc.pid, label)
            if on_output is not None and redact is not None:
                streamer = _OutputStreamer(output_path, redact, on_output, len(header))
            delay = 0.01
            while not _leader_exited(proc):
                tracked.update(_tree(pgid, pgid))
                if streamer is not None:
                    streamer.pump()
                elapsed = time.monotonic() - start
                if elapsed >= timeout_s:
                    timed_out = True
                    break
                if cancel_file is not None and Path(cancel_file).exists():
                    cancelled = True
                    break
                time.sleep(max(0.0, min(delay, timeout_s - elapsed)))
                delay = min(delay * 2, POLL_MAX_S)
            # Timeout / cancel: stop it. Normal exit: stop what it left running.
            _stop_all(pgid, tracked, grace_s)
            returncode = proc.wait()
            if returncode != 0 and cancel_file is not None and Path(cancel_file).exists():
                cancelled = cancelled or not timed_out  # stopped from outside after a cancel
            if streamer is not None:
                s, streamer = streamer, None
                s.finish()
            finished = True
        finally:
            if not finished:
                try:
                    _stop_all(pgid, tracked, grace_s)
                except BaseException:
                    _killpg(pgid, signal.SIGKILL)  # interrupted again: no more grace
                    raise
                finally:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=KILL_SETTLE_S)
                    if streamer is not None:
                        streamer.close()
            if writer is not None:
                writer.join(timeout=1.0)
            if pid_file is not None:
                _remove_pid_file(Path(pid_file), proc.pid)
    return Finished(returncode, timed_out, cancelled, time.monotonic() - start)
