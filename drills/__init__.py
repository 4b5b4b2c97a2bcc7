"""Durability drills: the video pipeline under the failures it must survive, against a real
Dagster deployment (a `dagster-daemon`, its code server, run workers, the run queue, the `gpu`
pool) and real servers on 127.0.0.1 (HTTP media, asyncssh SFTP as the NAS).

    python -m drills                     # all seven, the issue's sizes; table + drills-results.json
    python -m drills --only 3 --only 4   # some of them
    python -m drills --json out.json

Each drill reports how many videos were sent, materialized (all five assets + the note),
materialized more than once (duplicates) and never finished (lost), plus its own checks. The
test suite runs them too (igs_dagster_tests/test_drills.py).

1. backlog      50 URLs sent while the daemon is stopped, then the daemon starts
2. daemon_kill  the daemon SIGKILLed twice in a stream of sends and sensor ticks, restarted
3. worker_kill  a run worker SIGKILLed during transcription; watchdog + run retry finish it
4. nas_outage   the NAS (SFTP) down for ~15 s, then a connection cut mid-upload
5. disk_full    the data folder's media area full (tmpfs) during a download, then freed
6. gpu_pool     two transcriptions at once from the sensor and `dagster job backfill`
7. docker       the compose deployment built and run in a private Docker engine (drills/docker_stack.py)
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drills.common import DrillResult, make_long_clip, new_deployment
from igs_dagster.core.local_http import FolderServer
from igs_dagster_tests.dagster_env import DagsterEnv
from igs_dagster_tests.media import KILL_CLIP_REPEAT


@dataclass
class DrillContext:
    """What drills share: a work folder, the media server, the long clip (and a longer
    `kill_clip()`), and one deployment (and daemon) for the drills that can share it (1, 2, 3, 6)."""

    workdir: Path
    media: object  # anything with .add(src, name) -> url (a FolderServer)
    long_clip: Path
    backlog_size: int = 50
    _shared: DagsterEnv | None = None
    _own: list[DagsterEnv] = field(default_factory=list)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def standalone(cls, workdir: Path | None = None, **kw) -> DrillContext:
        workdir = Path(workdir or tempfile.mkdtemp(prefix="igs-drills-"))
        workdir.mkdir(parents=True, exist_ok=True)
        media = FolderServer(workdir / "served")
        ctx = cls(workdir, media, make_long_clip(workdir / "long"), **kw)
        ctx._closers.append(media.close)
        return ctx

    def kill_clip(self) -> Path:
        """A clip long enough to kill a worker mid-transcription (made once, then reused)."""
        return make_long_clip(self.workdir / "kill", repeat=KILL_CLIP_REPEAT)

    def shared(self) -> DagsterEnv:
        if self._shared is None:
            self._shared = new_deployment(self.workdir / "shared")
        return self._shared

    def own(self, name: str, **env: str) -> DagsterEnv:
        deployment = new_deployment(self.workdir / name, **env)
        self._own.append(deployment)
        return deployment

    def close(self) -> None:
        for deployment in [self._shared, *self._own]:
            if deployment is not None:
                deployment.stop_daemon()
        for closer in reversed(self._closers):
            closer()


def registry() -> dict[int, tuple[str, Callable[[DrillContext, DrillResult], None]]]:
    from drills import (
        backlog,
        daemon_kill,
        disk_full,
        docker_stack,
        gpu_pool,
        nas_outage,
        worker_kill,
    )

    return {
        1: ("backlog", backlog.run),
        2: ("daemon_kill", daemon_kill.run),
        3: ("worker_kill", worker_kill.run),
        4: ("nas_outage", nas_outage.run),
        5: ("disk_full", disk_full.run),
        6: ("gpu_pool", gpu_pool.run),
        7: ("docker", docker_stack.run),
    }


def run_drill(number: int, ctx: DrillContext) -> DrillResult:
    """Run one drill; any exception becomes the result's error (never raised)."""
    import time
    import traceback

    name, fn = registry()[number]
    result = DrillResult(number, name)
    started = time.monotonic()
    try:
        fn(ctx, result)
    except Exception as err:  # a drill that cannot finish is a failed drill, with its reason
        result.error = f"{type(err).__name__}: {err}"
        result.details["traceback"] = traceback.format_exc()[-4000:]
    result.wall_s = round(time.monotonic() - started, 1)
    return result
