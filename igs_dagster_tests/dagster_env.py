"""A real Dagster deployment for tests: persistent DAGSTER_HOME with the project's dagster.yaml,
the `dagster-daemon` process (sensors, run queue, run workers), and the `igs` CLI, all sharing
one set of IGS_* folders through the environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from igs_dagster_tests.media import LOOPBACK, MEDIA_ROOTS

REPO = Path(__file__).resolve().parent.parent
# the steps of one video_ingest run: every video asset, then each asset check (`<asset>_<check>`)
INGEST_STEPS = sorted([
    "video_download", "video_archive", "transcript", "vault_note", "enriched_summary",
    "search_index", "related_notes", "video_extras",
    "video_archive_video_archive_check", "transcript_transcript_check",
    "vault_note_vault_note_check", "enriched_summary_enriched_summary_check",
])
# the system-log actions of one successful video_ingest run: each asset and each asset check
INGEST_STAGE_ACTIONS = sorted([
    "video.download.succeeded", "video.archive.succeeded", "transcript.process.succeeded",
    "note.write.succeeded", "content.summarize.succeeded", "search.index.succeeded",
    "notes.relate.succeeded", "media.extras.succeeded",
    "check.video_archive.succeeded", "check.transcript.succeeded",
    "check.vault_note.succeeded", "check.enriched_summary.succeeded",
])
PYTHON = sys.executable


@dataclass
class DagsterEnv:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    daemon: subprocess.Popen | None = None

    @classmethod
    def create(cls, root: Path, **extra_env: str) -> DagsterEnv:
        from igs_dagster.core.settings import load_settings
        from igs_dagster.defs.instance import prepare_dagster_home

        env = {k: v for k, v in os.environ.items() if not k.startswith(("IGS_", "DAGSTER_"))}
        env.update({
            "IGS_DATA_DIR": str(root / "data"),
            "IGS_VAULT_DIR": str(root / "vault"),
            "DAGSTER_HOME": str(root / "data" / "dagster_home"),
            "PYTHONUNBUFFERED": "1",
            # test projects and PRDs live in temp folders: the loop roots (issue 10)
            "IGS_LOOP__ROOTS": json.dumps([tempfile.gettempdir()]),
            # issue 23: local media from the temp folder and fixtures, downloads from loopback
            "IGS_MEDIA_ROOTS": json.dumps(MEDIA_ROOTS),
            "IGS_NETWORK__ALLOW": json.dumps(LOOPBACK),
            **extra_env,
        })
        deployment = cls(root, env)
        with deployment.activated():
            prepare_dagster_home(load_settings())
        # create the storage schema now: a daemon and its code server racing to create a fresh
        # SQLite schedules.db can leave two alembic heads behind
        deployment.instance().dispose()
        return deployment

    @contextmanager
    def activated(self) -> Iterator[None]:
        """Run in-process code (execute_job, sensors) with this deployment's environment."""
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    @property
    def vault(self) -> Path:
        return Path(self.env["IGS_VAULT_DIR"])

    @property
    def data(self) -> Path:
        return Path(self.env["IGS_DATA_DIR"])

    def instance(self) -> dg.DagsterInstance:
        """The deployment's instance; its storage is configured from the deployment's own
        environment (a Postgres password is read from it when the instance is made)."""
        with self.activated():
            return dg.DagsterInstance.from_config(str(self.home))

    def run(self, *argv: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
        """Run a command (argv) with this deployment's environment, from the repo root."""
        proc = subprocess.run(
            list(argv), env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def igs(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(PYTHON, "-m", "igs_dagster.cli", *args, **kw)

    def key(self, url: str) -> str:
        """The partition key `igs send URL` queues (`--dry-run`: nothing is queued)."""
        return self.igs("send", "--dry-run", url, check=True).stdout.split("\t")[0]

    def dagster(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(PYTHON, "-m", "dagster", *args, **kw)

    # ---- daemon --------------------------------------------------------------------------
    def start_daemon(self, prefix: tuple[str, ...] = ()) -> None:
        """`prefix`: argv the daemon runs under (e.g. nsenter into a network namespace)."""
        assert self.daemon is None or self.daemon.poll() is not None
        log = open(self.root / "daemon.log", "ab")  # noqa: SIM115 - closed with the process
        self.daemon = subprocess.Popen(
            [*prefix, PYTHON, "-m", "dagster._daemon", "run", "-m", "igs_dagster.definitions"],
            env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def stop_daemon(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.daemon is None or self.daemon.poll() is not None:
            return
        os.killpg(self.daemon.pid, sig)
        try:
            self.daemon.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.daemon.pid, signal.SIGKILL)
            self.daemon.wait(10)

    def daemon_log(self) -> str:
        path = self.root / "daemon.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    # ---- waiting -------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], object], timeout: float = 180, what: str = "") -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.daemon is not None and self.daemon.poll() is not None:
                raise AssertionError(f"daemon exited while waiting for {what}:\n{self.daemon_log()}")
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n--- daemon log ---\n{self.daemon_log()}")

    def finished_runs(self, instance: dg.DagsterInstance, n: int, timeout: float = 240) -> list:
        done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}

        def ready():
            records = instance.get_run_records()
            finished = [r for r in records if r.dagster_run.status in done]
            return finished if len(finished) >= n else None

        return self.wait_for(ready, timeout, f"{n} finished runs")  # type: ignore[return-value]


def step_intervals(instance: dg.DagsterInstance, run_id: str, step_key: str) -> tuple[float, float] | None:
    """(start, end) timestamps of a step from the event log."""
    start = end = None
    for record in instance.get_records_for_run(run_id).records:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key != step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            start = record.event_log_entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            end = record.event_log_entry.timestamp
    return (start, end) if start and end else None


def ingest_job():
    """The ingest job, importable by path for `dg.reconstructable` (re-execution tests)."""
    from igs_dagster.definitions import defs

    return defs.resolve_job_def("video_ingest")


def handed(settings, key: str, asset: str) -> dict:
    """What `asset` handed on to the assets after it for partition `key` (its claim file,
    defs/video/claims.py): the test's view of the asset's value."""
    from igs_dagster.defs.video import claims

    return claims.handed(settings.media_dir, key, asset)


def stray_temp_files(*roots: Path) -> list[Path]:
    """Temp/partial files our writers or yt-dlp could leave behind."""
    found = []
    for root in roots:
        if root.exists():
            for path in root.rglob("*"):
                if path.is_file() and (path.name.startswith(".igs-tmp-") or path.suffix in (".part", ".ytdl")):
                    found.append(path)
    return found


@dataclass
class InProcess:
    """This test process as a deployment: IGS_* folders and DAGSTER_HOME under `root`, the
    prepared instance, and the ingest job, run in this process as the sensor would run it."""

    root: Path
    settings: object
    instance: dg.DagsterInstance
    job: object

    @classmethod
    def create(cls, root: Path, monkeypatch) -> InProcess:
        from igs_dagster.core.settings import load_settings
        from igs_dagster.definitions import defs
        from igs_dagster.defs.instance import open_instance

        for name in [n for n in os.environ if n.startswith("IGS_") or n == "DAGSTER_HOME"]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("IGS_DATA_DIR", str(root / "data"))
        monkeypatch.setenv("IGS_VAULT_DIR", str(root / "vault"))
        monkeypatch.setenv("DAGSTER_HOME", str(root / "data" / "dagster_home"))
        monkeypatch.setenv("IGS_MEDIA_ROOTS", json.dumps(MEDIA_ROOTS))  # as the session (issue 23)
        monkeypatch.setenv("IGS_NETWORK__ALLOW", json.dumps(LOOPBACK))  # media on 127.0.0.1
        settings = load_settings()
        return cls(root, settings, open_instance(settings), defs.resolve_job_def("video_ingest"))

    def ingest(self, url: str):
        """`igs send URL`, then the run the sensor would start for it: (key, result)."""
        from igs_dagster.core.events import VideoDownload, VideoDownloadData
        from igs_dagster.intake import accept

        event = VideoDownload(name="video.download", data=VideoDownloadData(url=url))
        key = accept(event, self.settings).key
        self.instance.add_dynamic_partitions("videos", [key])
        return key, self.job.execute_in_process(instance=self.instance, partition_key=key,
                                                raise_on_error=False)
