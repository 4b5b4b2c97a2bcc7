"""The always-on Dagster stack of `igs dev`: one code server, the webserver and the daemon,
supervised by this small process (standard library only: it never imports Dagster).

`dagster dev` runs the same three plus two more processes: itself (~130 MB, all of Dagster
imported to watch its children) and a code-server proxy in front of the real code server
(~100 MB, and a gRPC hop for every sensor tick), which exist so the UI can reload changed code.
An always-on service does not reload code, it restarts; so `igs dev` starts the code server
itself (`dagster api grpc` on a private unix socket, location name `igs_dagster.definitions`
like `dagster dev`'s, so sensor cursors and run history carry over) and points the webserver
and daemon at it through a workspace file: bench figure 10. `igs dev --reload` runs plain
`dagster dev` instead, for editing code with the UI open.

When any of the three exits, the others are stopped and this process exits with status 1, so
the service manager (systemd/launchd, `igs service install`) restarts the whole stack; SIGTERM
or SIGINT stops all three and exits 0. With `--data-dir` it holds that folder's service lock
(core/service_lock.py) from before the first process starts to after the last one stopped: a
second stack on the same data is refused with one line (exit 2) and starts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from igs_dagster.dagster_compat import DAEMON_MODULE  # a name only: Dagster is not imported

LOCATION = "igs_dagster.definitions"
STOP_GRACE_S = 20.0
READY_TIMEOUT_S = 300.0


def workspace_yaml(sock: Path) -> str:
    return (
        "load_from:\n"
        "  - grpc_server:\n"
        f"      socket: {sock}\n"
        "      host: localhost\n"
        f"      location_name: {LOCATION}\n"
    )


ENTRY = "igs_dagster.cli.dagster_entry"  # the webserver and daemon with a slower code-server watch


def commands(python: str, folder: Path, host: str, port: int, log_level: str = "info") -> dict[str, list[str]]:
    """argv of the three processes, code server first."""
    sock = folder / "code.sock"
    workspace = folder / "workspace.yaml"
    return {
        "code server": [python, "-m", "dagster", "api", "grpc", "--socket", str(sock),
                        "-m", LOCATION, "--location-name", LOCATION, "--log-level", "warning"],
        "webserver": [python, "-m", ENTRY, "dagster_webserver", "-w", str(workspace), "-h", host,
                      "-p", str(port), "--dagster-log-level", log_level],
        "daemon": [python, "-m", ENTRY, DAEMON_MODULE, "run", "-w", str(workspace),
                   "--log-level", log_level],
    }


def _listening(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(sock))
            return True
        except OSError:
            return False


class Stack:
    def __init__(self, host: str, port: int, log_level: str = "info", data_dir: Path | None = None):
        self.host, self.port, self.data_dir = host, port, data_dir
        self.folder = Path(tempfile.mkdtemp(prefix="igs-stack-"))  # mode 700: the socket is private
        (self.folder / "workspace.yaml").write_text(workspace_yaml(self.folder / "code.sock"))
        self.argv = commands(sys.executable, self.folder, host, port, log_level)
        self.procs: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def start(self) -> None:
        code = self.argv["code server"]
        self.procs["code server"] = subprocess.Popen(code)
        sock = self.folder / "code.sock"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _listening(sock):
            if self.procs["code server"].poll() is not None or self.stopping:
                raise SystemExit(1)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the code server did not listen within {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.2)
        for name in ("webserver", "daemon"):
            self.procs[name] = subprocess.Popen(self.argv[name])
        if self.data_dir is not None:  # where `igs status|runs` find the webserver
            from igs_dagster.core import webserver

            webserver.record(self.data_dir, self.host, self.port, os.environ["DAGSTER_HOME"])

    def wait(self) -> int:
        """Until a process exits (1) or a stop signal arrives (0)."""
        while not self.stopping:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    print(f"igs dev: the {name} exited ({proc.returncode}); stopping the others",
                          file=sys.stderr, flush=True)
                    return 1
            time.sleep(0.5)
        return 0

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):  # daemon, webserver, then code server
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.data_dir is not None:
            from igs_dagster.core import webserver

            webserver.forget(self.data_dir)  # only our own record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m igs_dagster.cli.stack")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--log-level", default="info")
    p.add_argument("--data-dir", type=Path, help="record the webserver's address here (igs status)")
    args = p.parse_args(argv)
    if not os.environ.get("DAGSTER_HOME"):
        print("igs dev: DAGSTER_HOME is not set (start through `igs dev`)", file=sys.stderr)
        return 2
    lock = None
    if args.data_dir is not None:
        from igs_dagster.core import webserver
        from igs_dagster.core.service_lock import ServiceLock, ServiceRunning

        lock = ServiceLock(args.data_dir)
        try:
            lock.acquire(url=webserver.base_url(args.host, args.port))
        except ServiceRunning as err:
            print(f"igs: error: {err}", file=sys.stderr)
            return 2
    stack = Stack(args.host, args.port, args.log_level, args.data_dir)

    def on_signal(signum, frame):  # noqa: ARG001
        stack.stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        stack.start()
        return stack.wait()
    finally:
        stack.stop()
        if lock is not None:
            lock.release()


if __name__ == "__main__":
    sys.exit(main())
