"""A network namespace of a test's own, with only a loopback interface: what runs in it can
resolve no name and reach nothing beyond its own 127.0.0.1, and a port there (3000 for
`igs dev`) is free whatever the machine runs. Needs root, unshare and nsenter."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from igs_dagster_tests.conftest import unavailable


class LoopbackOnlyNetwork:
    """A network namespace with only `lo` (up), held by a sleeping process; commands enter it
    with `nsenter --target PID --net`."""

    def __init__(self):
        if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
            unavailable("a network namespace needs root, unshare and nsenter")
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && exec sleep 86400"])
        deadline = time.monotonic() + 30
        while "UP" not in self.links():
            if self.holder.poll() is not None or time.monotonic() > deadline:
                self.close()
                unavailable("could not create a network namespace with loopback up")
            time.sleep(0.1)

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("nsenter", f"--target={self.holder.pid}", "--net", "--")

    def links(self) -> str:
        return subprocess.run([*self.prefix, "ip", "-o", "link"], capture_output=True,
                              text=True, timeout=30).stdout

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait(10)
