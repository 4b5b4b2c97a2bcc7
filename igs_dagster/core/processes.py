"""Child processes under supervision: the one mechanism agents, loop checks and the watchdog use.

- `run_supervised` runs an argument list (never a shell) under a guard process (core/guard.py):
  the command gets its own session / process group, output to a file, optional stdin data; it
  ends on exit, timeout, a cancel file appearing, or any exception in the caller's thread. Then
  the guard stops the WHOLE tree (SIGTERM, SIGKILL after `grace_s`): the command's group and
  every descendant, even one that ignores SIGTERM or left the group (setsid); on Linux the guard
  is their child subreaper, so even one whose parent had exited is found.
- The command dies with its caller: the guard watches a pipe whose only writer is the caller,
  and when the caller is killed hard (SIGKILL, the OOM killer: no `finally` runs) the pipe's
  EOF makes the guard stop the tree. Same on macOS (a pipe, no Linux-only mechanism).
- The caller waits on the guard's exit (a pidfd on Linux, `waitpid` elsewhere), looking only
  at the cancel file and the output file every CHECK_S, never at the process table.
- A pid file records a running command (its pid, group and start time, the caller and the
  guard) so another process (`igs loop cancel`, or a retried step after its runner was
  SIGKILLed) can stop it: `kill_from_pid_file`, which acts only on the very process it
  recorded (pid + start time), never on a process that reuses the pid.
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
from igs_dagster.core.guard import KILL_SETTLE_S, Guard
from igs_dagster.core.redact import Redactor

CHECK_S = 0.2  # how often the cancel file and the output are looked at while the command runs


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


def _same(pid: int, started: float | None) -> bool | None:
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
        return started is None or _same(pgid, started) is not False

    if not group_members(pgid) or not ours():
        return False
    if not _killpg(pgid, signal.SIGTERM):
        return False
    deadline = time.monotonic() + max(grace_s, 0.0)
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return True
        time.sleep(0.05)
    if ours():
        _killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_SETTLE_S
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


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


def _write_pid_file(pid_file: Path, pid: int, label: str, guard: int) -> None:
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
    if recorded is None or _same(pid, float(recorded)) is False:
        _remove_pid_file(pid_file, pid)  # unverifiable, or the pid was reused: not ours
        return False
    acted = stop_process_group(pgid, grace_s, started=float(recorded))
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
            guard = Guard(argv, executable, cwd, env,
                           subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                           out_fd, grace_s)
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR):
                raise StartError(err.errno, err.strerror, argv[0]) from None
            raise
        finally:
            os.close(out_fd)
        try:
            return _supervise(guard, argv, start, timeout_s, stdin_data, output_path, header,
                              cancel_file, pid_file, label, grace_s, redact, on_output)
        finally:
            guard.close()


def _supervise(guard: Guard, argv: list[str], start: float, timeout_s: float,
               stdin_data: bytes | None, output_path: Path, header: bytes,
               cancel_file: Path | None, pid_file: Path | None, label: str, grace_s: float,
               redact: Redactor | None, on_output: Callable[[str], None] | None) -> Finished:
    """The guard has started: wait for the command, stop it when asked, collect its end."""
    first = guard.line()
    if not first.startswith("pid "):
        guard.wait(KILL_SETTLE_S)
        code = int(first.split()[1]) if first.startswith("error ") else errno.EIO
        if code in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR):
            raise StartError(code, os.strerror(code), argv[0])
        raise OSError(code, f"the guard could not start {argv[0]}: {os.strerror(code)}")
    pid = int(first.split()[1])
    started = start_time(pid)
    writer = None
    if stdin_data is not None:
        writer = threading.Thread(target=_feed_stdin, args=(guard.proc.stdin, stdin_data),
                                  name=f"stdin-{pid}", daemon=True)
    streamer: _OutputStreamer | None = None
    finished = False
    timed_out = cancelled = False
    try:
        if writer is not None:
            writer.start()
        if pid_file is not None:
            _write_pid_file(Path(pid_file), pid, label, guard.proc.pid)
        if on_output is not None and redact is not None:
            streamer = _OutputStreamer(output_path, redact, on_output, len(header))
        # with nothing to look at, sleep until the guard exits or the timeout
        every = CHECK_S if streamer is not None or cancel_file is not None else timeout_s
        while True:
            left = start + timeout_s - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if guard.wait(min(every, left)):
                break
            if streamer is not None:
                streamer.pump()
            if cancel_file is not None and Path(cancel_file).exists():
                cancelled = True
                break
        guard.stop()  # timeout / cancel: stops the tree; after an exit: returns at once
        finished = True
    finally:
        if not finished:
            try:
                guard.stop()
            except BaseException:
                guard.proc.kill()  # interrupted again: no more grace
                _killpg(pid, signal.SIGKILL)
                raise
            finally:
                if streamer is not None:
                    streamer.close()
        if writer is not None:
            writer.join(timeout=1.0)
        if pid_file is not None:
            _remove_pid_file(Path(pid_file), pid)
    last = guard.line()
    if last.startswith("rc "):
        returncode = int(last.split()[1])
    else:  # the guard itself was killed: stop the command's group from here
        stop_process_group(pid, grace_s, started=started)
        returncode = guard.proc.returncode
    if returncode != 0 and cancel_file is not None and Path(cancel_file).exists():
        cancelled = cancelled or not timed_out  # stopped from outside after a cancel
    if streamer is not None:
        streamer.finish()
    return Finished(returncode, timed_out, cancelled, time.monotonic() - start)
