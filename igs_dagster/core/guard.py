"""The guard between a caller (a run worker) and a command it supervises (core/processes.py).

Why a process of its own: the run worker may die without a word (SIGKILL, the OOM killer, a
crash), and nothing it would do in a `finally` happens then, while the command runs on in its
own session. The guard watches the worker through a pipe whose only writer is the worker: EOF
means the worker is gone, and the guard stops the command's whole tree before it exits itself.

It is also the command's parent, so it waits on it (no polling), and on Linux it is a child
subreaper (prctl PR_SET_CHILD_SUBREAPER): a descendant whose parent exits is re-parented to the
guard instead of init, so when the command ends everything it started is still below the
guard, whatever session or group it moved to (pi runs its bash tool with setsid). macOS has no
subreaper: there the guard looks at the tree every TRACK_S and also stops what it saw before
(a process started and orphaned between two looks can escape; cgroups would be needed).

Usage (argv): guard.py LIFE_FD STATUS_FD GRACE_S EXECUTABLE -- ARGV...
- LIFE_FD: read end of the caller's pipe; EOF (the caller exited or was killed): stop.
- STATUS_FD: the guard writes `pid N` once the command runs (or `error ERRNO` when it could not
  start), later `rc N` (N as Popen.returncode: -SIG for a signal) when it is over.
- EXECUTABLE: the program to run ("" = ARGV[0], looked up in PATH).
- SIGTERM / SIGINT / SIGHUP to the guard: stop the command, then report and exit.
Stopping: SIGTERM to the command's process group and every descendant, SIGKILL to what is left
after GRACE_S. After a normal exit, whatever the command left running is stopped the same way.
The command runs in a new session with the guard's stdin, stdout, stderr, cwd and environment.

Standard library only (psutil is imported when stopping), run by path with `python -I`: it
imports nothing of the project and starts in a few ms of CPU.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

TRACK_S = 1.0  # macOS: how often the tree is looked at while the command runs
KILL_SETTLE_S = 5.0
PR_SET_CHILD_SUBREAPER = 36


def subreaper() -> bool:
    """Become the child subreaper of our descendants (Linux); False where there is none."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def spawn(executable: str, argv: list[str]) -> int:
    """Start `argv` in a new session with default SIGPIPE/SIGXFSZ (Python ignores them)."""
    path = executable or argv[0]
    start = os.posix_spawn if os.sep in path else os.posix_spawnp
    reset = [s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if s]
    return start(path, argv, dict(os.environ), setsid=True, setsigdef=reset)


class Tree:
    """The command's process tree, stopped as a whole."""

    def __init__(self, pid: int, grace_s: float, track: bool):
        self.pid = pid  # also its process group (new session)
        self.grace_s = grace_s
        self.track = track
        self.seen: dict[int, object] = {}  # pid -> psutil.Process, when tracking (no subreaper)
        self.lock = threading.Lock()

    def members(self) -> list:
        """Live descendants of the guard (the command and all it started, with a subreaper),
        the command's group, and what tracking saw."""
        import psutil

        found = {}
        try:
            for proc in psutil.Process().children(recursive=True):
                found[proc.pid] = proc
        except psutil.Error:
            pass
        if self.track:  # no subreaper: the group's members and what was seen earlier count too
            for proc in psutil.process_iter():
                with contextlib.suppress(psutil.Error, OSError):
                    if os.getpgid(proc.pid) == self.pid:
                        found.setdefault(proc.pid, proc)
            for pid, proc in self.seen.items():
                found.setdefault(pid, proc)
        alive = []
        for proc in found.values():
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                    alive.append(proc)
        return alive

    def look(self) -> None:
        import psutil

        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process().children(recursive=True):
                self.seen.setdefault(proc.pid, proc)

    def _signal(self, procs: list, sig: int) -> None:
        import psutil

        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)  # members started since the last look
        for proc in procs:  # psutil checks each one's start time: a reused pid is left alone
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)

    def _alone(self) -> bool:
        """Linux, subreaper: nothing but the command (alive or a zombie) is our child, so
        nothing else is left (an orphan would have been re-parented to us). Read from /proc
        without a process-table scan: the common end of a command that leaves nothing."""
        if self.track:
            return False
        try:
            children = set()
            for task in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{task}/children") as handle:
                    children.update(int(pid) for pid in handle.read().split())
        except (OSError, ValueError):
            return False
        return children <= {self.pid} and not self._running(self.pid)

    @staticmethod
    def _running(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, IndexError):
            return False

    def stop(self) -> None:
        """SIGTERM everything, SIGKILL what is left after the grace period. Idempotent."""
        if self._alone():
            return
        with self.lock:
            for sig, wait in ((signal.SIGTERM, self.grace_s), (signal.SIGKILL, KILL_SETTLE_S)):
                procs = self.members()
                if not procs:
                    return
                self._signal(procs, sig)
                deadline = time.monotonic() + max(wait, 0.0)
                while self.members() and time.monotonic() < deadline:
                    time.sleep(0.05)


def _say(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, f"{line}\n".encode())


def _watch(fd: int, stop: threading.Event) -> None:
    """Block on the caller's pipe; any end of it (EOF, an error) means the caller is gone."""
    with contextlib.suppress(OSError):
        while os.read(fd, 64):
            pass
    stop.set()


def _wait_for(pid: int) -> int | None:
    """Until `pid` has exited; every other child that exits meanwhile (an orphan we adopted) is
    reaped. With waitid, `pid` is left a zombie (not reaped: its pid and group id stay ours
    while its tree is stopped) and None is returned; without (macOS), its exit code."""
    while True:
        if hasattr(os, "waitid"):
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                return None
            if info is None or info.si_pid == pid:
                return None
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)
        else:
            try:
                got, code = os.waitpid(-1, 0)
            except ChildProcessError:
                return None
            if got == pid:
                return os.waitstatus_to_exitcode(code)


def _reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# --------------------------------------------------------------------------- the caller's side


class Guard:
    """The caller's side: starts the guard for one command, reads its status lines, waits on it
    (a pidfd on Linux), stops it. Used by core/processes.py."""

    def __init__(self, argv: list[str], executable: str | None, cwd: Path,
                 env: Mapping[str, str] | None, stdin: int | None, out_fd: int, grace_s: float):
        import subprocess  # the caller's side only: the guard program starts without them
        from pathlib import Path

        life_r, self._life = os.pipe()  # the guard's EOF: this process is gone
        status_r, status_w = os.pipe()
        self._status = os.fdopen(status_r, "rb", buffering=0)
        self.grace_s = grace_s
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - argument list, never a shell
                [sys.executable, "-I", str(Path(__file__)), str(life_r), str(status_w), repr(grace_s),
                 executable or "", "--", *argv],
                cwd=cwd, env=dict(env) if env is not None else None, stdin=stdin, stdout=out_fd,
                stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(life_r, status_w),
            )
        except BaseException:
            os.close(self._life)
            self._status.close()
            raise
        finally:
            os.close(life_r)
            os.close(status_w)
        self._pidfd = None
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                self._pidfd = os.pidfd_open(self.proc.pid)

    def line(self) -> str:
        """The guard's next status line ("" once it exited without one)."""
        data = b""
        while not data.endswith(b"\n"):
            byte = self._status.read(1)
            if not byte:
                break
            data += byte
        return data.decode("ascii", "replace").strip()

    def wait(self, timeout: float) -> bool:
        """Block until the guard exits or `timeout` passes; True when it has exited."""
        import select
        import subprocess

        if self._pidfd is not None:
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)
            poller.poll(max(0.0, timeout) * 1000)
            return self.proc.poll() is not None
        try:
            self.proc.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        """Make the guard stop the command's tree and wait for it to finish; kill it if it
        does not (then the caller stops the command's group itself)."""
        self.proc.send_signal(signal.SIGTERM)  # a no-op once it exited (Popen checks)
        if not self.wait(self.grace_s + 2 * KILL_SETTLE_S):
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._life)
        self._status.close()
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)


# --------------------------------------------------------------------------- the guard


def main(argv: list[str]) -> int:
    life, status, grace_s, executable = int(argv[1]), int(argv[2]), float(argv[3]), argv[4]
    command = argv[6:]
    for fd in (life, status):
        os.set_inheritable(fd, False)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    track = not subreaper()
    try:
        pid = spawn(executable, command)
    except OSError as err:
        _say(status, f"error {err.errno or 0}")
        return 127
    _say(status, f"pid {pid}")
    null = os.open(os.devnull, os.O_RDONLY)  # the command's stdin is its own now: a command
    os.dup2(null, 0)  # that stops reading gets EPIPE to its writer at once, not when we exit
    os.close(null)
    tree = Tree(pid, grace_s, track)

    def stopper() -> None:
        while not stop.wait(TRACK_S if track else None):
            tree.look()
        tree.stop()

    threading.Thread(target=_watch, args=(life, stop), daemon=True).start()
    threading.Thread(target=stopper, daemon=True).start()
    rc = _wait_for(pid)
    tree.stop()  # what it left running (a background server), or the rest of a stop
    if rc is None:
        try:
            rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except ChildProcessError:
            rc = -signal.SIGKILL
    _reap_all()
    _say(status, f"rc {rc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
