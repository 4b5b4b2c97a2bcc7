"""Deployment files: docker compose, the compose instance config, the Helm values, Caddy and the
always-on service files rendered by igs_dagster.cli.service.

Nothing here starts Docker, Kubernetes or a service manager: the files are parsed and checked
against each other, against the project's settings model and against Dagster's own instance
config schema. Tools that happen to be installed (`docker compose`, `caddy`, `systemd-analyze`,
dagster-docker, dagster-k8s) are used for a stricter check and skipped otherwise.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from igs_dagster.cli import service

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "docker"
HELM = REPO / "deploy" / "helm"
CADDYFILE = REPO / "deploy" / "caddy" / "Caddyfile"

REQUIRED_ENV = {"IGS_POSTGRES__PASSWORD": "pw for tests", "IGS_API__TOKEN": "token-for-tests"}
VOLUME_TARGETS = {"igs-vault": "/vault", "igs-data": "/data", "igs-models": "/models", "igs-secrets": "/secrets"}


def _load(path: Path):
    return yaml.safe_load(path.read_text())


def _compose() -> dict:
    return _load(DOCKER / "compose.yaml")


def _interpolate(value: str, env: dict[str, str]) -> str:
    """docker compose's ${VAR}, ${VAR:-default} and ${VAR:?error} (enough for our files)."""

    def repl(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        got = env.get(name, "")
        if op == ":-":
            return got or arg
        if op == ":?":
            if not got:
                raise KeyError(f"{name}: {arg}")
            return got
        return got

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", repl, value).replace("$$", "$")


def _service_env(svc: dict, env: dict[str, str]) -> dict[str, str]:
    return {k: _interpolate(str(v), env) for k, v in (svc.get("environment") or {}).items()}


def _volume_pairs(svc: dict) -> dict[str, str]:
    """{target: source} of a compose service's short-syntax volumes."""
    pairs = {}
    for entry in svc.get("volumes", []):
        source, target = entry.split(":")[:2]
        pairs[target] = source
    return pairs


# --------------------------------------------------------------------------- docker compose


def test_compose_services_volumes_and_network():
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"postgres", "igs-code", "igs-webserver", "igs-daemon", "igs-api"}
    assert {v["name"] for v in compose["volumes"].values()} == {*VOLUME_TARGETS, "igs-postgres"}
    # one (default) network with a fixed name; no per-service `networks:` lists, which a
    # host-network override (the docker drill) could not be combined with
    assert compose["networks"] == {"default": {"name": "igs-dagster"}}
    assert not [name for name, svc in services.items() if "networks" in svc]
    # Debian's docker-compose 1.29 rejects a top-level `name:` (compose spec before v2)
    assert "name" not in compose

    pg = services["postgres"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert _volume_pairs(pg) == {"/var/lib/postgresql/data": "postgres"}

    code = services["igs-code"]
    assert code["build"]["dockerfile"] == "docker/Dockerfile"
    assert (DOCKER / code["build"]["context"] / code["build"]["dockerfile"]).is_file()
    assert "grpc-health-check" in code["healthcheck"]["test"]
    assert _service_env(code, REQUIRED_ENV)["DAGSTER_CURRENT_IMAGE"] == _interpolate(code["image"], {})
    assert _volume_pairs(code) == {"/vault": "vault", "/data": "data", "/models": "models", "/secrets": "secrets",
                                   "/opt/dagster/dagster_home/dagster.yaml": "./dagster.yaml"}

    for name, command in (("igs-webserver", "dagster-webserver"), ("igs-daemon", "dagster-daemon")):
        svc = services[name]
        assert svc["command"][0] == command
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert svc["depends_on"]["igs-code"]["condition"] == "service_healthy"
        mounts = _volume_pairs(svc)
        assert mounts["/opt/dagster/dagster_home/dagster.yaml"] == "./dagster.yaml"
        assert mounts["/var/run/docker.sock"] == "/var/run/docker.sock"
        assert mounts["/data"] == "data"  # artifacts + compute logs live on the shared volume
        workspace = mounts["/opt/dagster/workspace.yaml"]
        assert (DOCKER / workspace).is_file() and svc["command"][-1] == "/opt/dagster/workspace.yaml"

    # UI and API only on the host's loopback unless the user opts in
    assert _interpolate(services["igs-webserver"]["ports"][0], {}) == "127.0.0.1:3000:3000"
    assert _interpolate(services["igs-api"]["ports"][0], {}) == "127.0.0.1:3111:3111"
    assert services["igs-api"]["command"][:2] == ["igs", "api"]


def test_compose_workspace_points_at_the_code_server():
    entry = _load(DOCKER / "workspace.yaml")["load_from"][0]["grpc_server"]
    assert entry["host"] in _compose()["services"]
    assert entry["port"] == 4000
    assert entry["location_name"] == "igs_dagster.definitions"
    assert "4000" in _dockerfile_cmd() and "igs_dagster" in _dockerfile_cmd()


def test_compose_requires_the_secrets():
    env = _compose()["x-igs-env"]
    with pytest.raises(KeyError, match="IGS_POSTGRES__PASSWORD"):
        _interpolate(env["IGS_POSTGRES__PASSWORD"], {})
    with pytest.raises(KeyError, match="IGS_API__TOKEN"):
        _interpolate(_compose()["services"]["igs-api"]["environment"]["IGS_API__TOKEN"], {})


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_compose_environment_is_valid_settings(gpu: bool, monkeypatch: pytest.MonkeyPatch):
    """The settings every container gets (compose env + the image's ENV) load without error."""
    from igs_dagster.core.settings import load_settings

    env = _service_env(_compose()["services"]["igs-daemon"], REQUIRED_ENV)
    if gpu:
        env.update(_service_env(_load(DOCKER / "compose.gpu.yaml")["services"]["igs-daemon"], REQUIRED_ENV))
    image_env = _dockerfile_env()
    for name in [n for n in os.environ if n.startswith("IGS_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name, value in {**image_env, **env}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.vault_dir == Path("/vault") and settings.data_dir == Path("/data")
    assert settings.dagster_home == Path("/opt/dagster/dagster_home")
    assert settings.archive.sftp_host == ""  # empty host = archive into the data volume
    assert settings.archive_dir == Path("/data/archive")
    assert settings.transcriber.device == ("cuda" if gpu else "auto")
    assert settings.postgres.host == "postgres"
    assert settings.postgres.password.get_secret_value() == REQUIRED_ENV["IGS_POSTGRES__PASSWORD"]


def test_compose_gpu_override():
    base = _compose()["services"]
    gpu = _load(DOCKER / "compose.gpu.yaml")["services"]
    devices = gpu["igs-code"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    for name, svc in gpu.items():
        assert "build" in base[name], name  # only overrides services that build the image
        assert svc["build"]["args"]["GPU"] == "1"
        assert _interpolate(svc["image"], {}) == "igs-dagster:gpu"
    assert _interpolate(gpu["igs-code"]["environment"]["DAGSTER_CURRENT_IMAGE"], {}) == "igs-dagster:gpu"
    for name in ("igs-webserver", "igs-daemon"):  # same target: replaces the base mount
        assert _volume_pairs(gpu[name]) == {"/opt/dagster/dagster_home/dagster.yaml": "./dagster.gpu.yaml"}
    assert _interpolate(gpu["igs-daemon"]["environment"]["IGS_TRANSCRIBER__DEVICE"], {}) == "cuda"


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _docker_compose_available(), reason="docker compose plugin not installed")
@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.gpu.yaml"]], ids=["cpu", "gpu"])
def test_docker_compose_config_accepts_the_files(files: list[str], tmp_path: Path):
    args = ["docker", "compose", "--project-directory", str(DOCKER)]
    for name in files:
        args += ["-f", str(DOCKER / name)]
    env = {**os.environ, **REQUIRED_ENV}
    done = subprocess.run([*args, "config", "--format", "json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    mount = {v["target"]: v["source"] for v in config["services"]["igs-daemon"]["volumes"]}
    expected = "dagster.gpu.yaml" if "compose.gpu.yaml" in files else "dagster.yaml"
    assert Path(mount["/opt/dagster/dagster_home/dagster.yaml"]).name == expected


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (v1) not installed")
@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.gpu.yaml"]], ids=["cpu", "gpu"])
def test_docker_compose_v1_accepts_the_files(files: list[str]):
    """Debian's docker-compose 1.29 (what the docker drill runs) reads the same files."""
    args = ["docker-compose", "-p", "igs-dagster"]
    for name in files:
        args += ["-f", str(DOCKER / name)]
    done = subprocess.run([*args, "config"], capture_output=True, text=True,
                          env={**os.environ, **REQUIRED_ENV})
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    mount = {v.split(":")[1]: v.split(":")[0] for v in config["services"]["igs-daemon"]["volumes"]}
    expected = "dagster.gpu.yaml" if "compose.gpu.yaml" in files else "dagster.yaml"
    assert Path(mount["/opt/dagster/dagster_home/dagster.yaml"]).name == expected


# --------------------------------------------------------------------------- compose instance


def _validate_instance_yaml(config: dict, tmp_path: Path) -> dict:
    from dagster._core.instance.config import dagster_instance_config

    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    validated, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    return dict(validated)


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster.gpu.yaml"])
def test_compose_instance_config_is_valid(name: str, tmp_path: Path):
    config = _load(DOCKER / name)
    validated = _validate_instance_yaml(config, tmp_path)
    assert validated["telemetry"] == {"enabled": False}
    assert validated["run_queue"]["dequeue_interval_seconds"] > 0  # the QueuedRunCoordinator
    assert validated["run_monitoring"]["enabled"] is True
    assert validated["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    pg = validated["storage"]["postgres"]["postgres_db"]
    assert pg["scheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1's default would need psycopg 3
    assert {pg[k]["env"] for k in ("hostname", "port", "username", "password", "db_name")} == {
        "IGS_POSTGRES__HOST", "IGS_POSTGRES__PORT", "IGS_POSTGRES__USER", "IGS_POSTGRES__PASSWORD",
        "IGS_POSTGRES__DB"}
    # run workers live in separate containers: artifacts and step logs must be on a shared volume
    for key in ("local_artifact_storage", "compute_logs"):
        assert validated[key]["config"]["base_dir"].startswith("/data/")


def test_compose_instance_files_are_generated_from_the_projects():
    """docker/dagster*.yaml are derived from the top-level dagster.yaml (never edited by hand):
    up to date, and the project's whole policy, with only the Docker-specific sections added."""
    import runpy

    render = runpy.run_path(str(DOCKER / "render_instance.py"))
    for name, text in render["render"]().items():
        assert (DOCKER / name).read_text() == text, f"{name} is out of date: python docker/render_instance.py"
    assert render["main"](["--check"]) == 0
    project = _load(REPO / "dagster.yaml")
    compose_instance = _load(DOCKER / "dagster.yaml")
    for key in ("run_queue", "concurrency", "run_retries", "sensors", "retention", "telemetry"):
        assert compose_instance[key] == project[key], key
    assert {"key": "igs/project", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in project[
        "concurrency"]["runs"]["tag_concurrency_limits"]
    assert project["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    assert project["run_retries"] == {
        "enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    assert set(compose_instance) - set(project) == {
        "storage", "run_launcher", "local_artifact_storage", "compute_logs"}


def test_compose_run_launcher_matches_compose():
    compose = _compose()
    launcher = _load(DOCKER / "dagster.yaml")["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    config = launcher["config"]
    assert config["network"] == compose["networks"]["default"]["name"]
    # every forwarded name must be set in the daemon, or launching a run fails
    daemon_env = _service_env(compose["services"]["igs-daemon"], REQUIRED_ENV)
    assert set(config["env_vars"]) <= set(daemon_env)
    volumes = dict(v.split(":")[:2] for v in config["container_kwargs"]["volumes"])
    assert volumes == VOLUME_TARGETS
    assert set(volumes) <= {v["name"] for v in compose["volumes"].values()}


def test_gpu_instance_differs_only_by_the_device_request():
    base = _load(DOCKER / "dagster.yaml")
    gpu = _load(DOCKER / "dagster.gpu.yaml")
    requests = gpu["run_launcher"]["config"]["container_kwargs"].pop("device_requests")
    assert requests == [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}]
    assert gpu == base


def test_docker_run_launcher_accepts_the_config():
    dagster_docker = pytest.importorskip("dagster_docker", reason="dagster-docker is an image-only dependency")
    from dagster._config import process_config

    for name in ("dagster.yaml", "dagster.gpu.yaml"):
        config = _load(DOCKER / name)["run_launcher"]["config"]
        result = process_config(dagster_docker.DockerRunLauncher.config_type(), config)
        assert result.success, result.errors
        dagster_docker.DockerRunLauncher(**result.value)  # also runs its own checks


# --------------------------------------------------------------------------- image


def _dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def _dockerfile_cmd() -> str:
    return next(line for line in _dockerfile().splitlines() if line.startswith("CMD "))


def _dockerfile_env() -> dict[str, str]:
    """The runtime ENV block that sets the IGS_* folders (a simple KEY=VALUE parser)."""
    text = _dockerfile().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV ") and "IGS_VAULT_DIR" in line:
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_dockerfile_installs_from_the_lock():
    text = _dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert "COPY pyproject.toml uv.lock" in text
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    syncs = re.findall(r"uv sync[^\n]*", code)
    # --no-default-groups: neither dev nor the Linux mlx-test group goes into the image
    assert syncs and all("--frozen" in s and "--no-default-groups" in s for s in syncs)
    assert re.search(r'pip install[^\n]*"uv==\$\{UV_VERSION\}"', text)  # uv itself from PyPI
    assert "--require-hashes -r docker/requirements-deploy.txt" in text
    assert "--require-hashes -r docker/requirements-cuda.txt" in text
    cmd = json.loads(_dockerfile_cmd()[4:])
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert cmd[cmd.index("-m") + 1] == "igs_dagster.definitions"
    assert cmd[cmd.index("-h") + 1] == "0.0.0.0" and cmd[cmd.index("-p") + 1] == "4000"
    assert _dockerfile_env()["IGS_VAULT_DIR"] == "/vault" and _dockerfile_env()["IGS_DATA_DIR"] == "/data"


def test_dockerignore_lets_every_copied_file_through():
    allowed = {line[1:].rstrip("/") for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for line in _dockerfile().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert source in allowed, source
                assert (REPO / source).exists(), source


def _lock_versions() -> dict[str, str]:
    text = (REPO / "uv.lock").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r'^name = "([^"]+)"\nversion = "([^"]+)"', text, re.M)}


@pytest.mark.parametrize("name", ["requirements-deploy.txt", "requirements-cuda.txt"])
def test_image_extras_are_pinned_hashed_and_agree_with_the_lock(name: str):
    """docker/lock-extras.sh output: rerun it when this fails after a uv.lock change."""
    lock = _lock_versions()
    text = (DOCKER / name).read_text()
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.M)
    assert pins
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    assert all("--hash=sha256:" in block for block in blocks if block.strip())
    for pkg, version in pins:
        key = re.sub(r"[-_.]+", "-", pkg).lower()
        if key in lock:
            assert lock[key] == version, f"{pkg} {version} != uv.lock {lock[key]}"
    if name == "requirements-deploy.txt":
        pinned = dict(pins)
        assert pinned["dagster-docker"] == pinned["dagster-k8s"] == lock["dagster-postgres"]
        assert pinned["dagster"] == lock["dagster"]


# --------------------------------------------------------------------------- Helm


def _helm_values() -> dict:
    return _load(HELM / "values.yaml")


def _chart_instance_config(values: dict) -> dict:
    """The dagster.yaml sections the chart renders from our values (mirrors the chart's
    configmap-instance / _concurrency / _run-coordinator templates for the keys we set)."""
    daemon = values["dagsterDaemon"]
    conc = values["concurrency"]
    mon = daemon["runMonitoring"]
    retries = daemon["runRetries"]
    qrc = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    return {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
            "config": {"dequeue_interval_seconds": qrc["dequeueIntervalSeconds"]},
        },
        "concurrency": {
            "pools": {"default_limit": conc["pools"]["defaultLimit"], "granularity": conc["pools"]["granularity"]},
            "runs": {"max_concurrent_runs": conc["runs"]["maxConcurrentRuns"],
                     "tag_concurrency_limits": conc["runs"]["tagConcurrencyLimits"]},
        },
        "run_monitoring": {
            "enabled": mon["enabled"], "start_timeout_seconds": mon["startTimeoutSeconds"],
            "cancel_timeout_seconds": mon["cancelTimeoutSeconds"],
            "max_resume_run_attempts": mon["maxResumeRunAttempts"],
            "poll_interval_seconds": mon["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": mon["freeSlotsAfterRunEndSeconds"],
        },
        "run_retries": {"enabled": retries["enabled"], "max_retries": retries["maxRetries"],
                        "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"]},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
        **values["additionalInstanceConfig"],
    }


def test_helm_values_instance_policy(tmp_path: Path):
    values = _helm_values()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["concurrency"]["enabled"] is True
    qrc = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    # the chart fails when limits are set both here and under `concurrency`
    assert "tagConcurrencyLimits" not in qrc and "maxConcurrentRuns" not in qrc
    rendered = _chart_instance_config(values)
    validated = _validate_instance_yaml(rendered, tmp_path)
    assert validated["concurrency"] == _load(REPO / "dagster.yaml")["concurrency"]
    assert validated["run_retries"] == _load(REPO / "dagster.yaml")["run_retries"]
    assert validated["telemetry"] == {"enabled": False}
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"


def test_helm_user_deployment_and_volumes():
    values = _helm_values()
    ud = values["dagster-user-deployments"]
    assert ud["enabled"] and ud["enableSubchart"]
    (dep,) = ud["deployments"]
    args = dep["codeServerArgs"]
    assert args[args.index("-m") + 1] == "igs_dagster.definitions"
    assert args[args.index("--location-name") + 1] == "igs_dagster.definitions"
    assert dep["includeConfigInLaunchedRuns"]["enabled"] is True  # runs inherit env + volumes
    assert "resources" not in dep  # would be copied onto every run pod (GPU only via the job tag)
    mounts = {m["name"]: m["mountPath"] for m in dep["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in dep["volumes"]}
    assert mounts.keys() == claims.keys()
    assert {claims[n]: mounts[n] for n in mounts} == {k: v for k, v in VOLUME_TARGETS.items() if k != "igs-secrets"}
    assert dep["env"]["IGS_VAULT_DIR"] == "/vault" and dep["env"]["IGS_DATA_DIR"] == "/data"
    assert values["additionalInstanceConfig"]["local_artifact_storage"]["config"]["base_dir"].startswith("/data/")

    extras = [doc for doc in yaml.safe_load_all((HELM / "igs-extras.yaml").read_text()) if doc]
    pvcs = {doc["metadata"]["name"] for doc in extras if doc["kind"] == "PersistentVolumeClaim"}
    assert set(claims.values()) <= pvcs
    api = next(doc for doc in extras if doc["kind"] == "Deployment")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["igs", "api"] and "3111" in container["command"]
    assert {"secretRef": {"name": "igs-secrets"}} in container["envFrom"]
    assert {"name": "igs-secrets"} in dep["envSecrets"]


def test_helm_gpu_job_tag():
    """The `dagster-k8s/config` tag for the transcription job (docs/deploy.md)."""
    config = json.loads((HELM / "transcribe-gpu-k8s-config.json").read_text())
    assert set(config) == {"container_config", "pod_spec_config"}
    resources = config["container_config"]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == "1"
    assert config["pod_spec_config"]["node_selector"] == {"nvidia.com/gpu.present": "true"}
    assert config["pod_spec_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert json.dumps(config, sort_keys=True) in _docs_json_blocks()


def _docs_json_blocks() -> list[str]:
    text = (REPO / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    return [json.dumps(json.loads(b), sort_keys=True) for b in blocks]


def test_helm_gpu_job_tag_builds_a_gpu_pod():
    pytest.importorskip("dagster_k8s", reason="dagster-k8s is an image-only dependency")
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import (
        DagsterK8sJobConfig,
        UserDefinedDagsterK8sConfig,
        construct_dagster_k8s_job,
    )

    launcher = _helm_values()["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    instance_level = K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
        {"pod_spec_config": launcher["podSpecConfig"], "job_spec_config": launcher["jobSpecConfig"]}))
    tag = K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
        json.loads((HELM / "transcribe-gpu-k8s-config.json").read_text())))
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="igs-dagster:test", dagster_home="/opt/dagster/dagster_home",
                            instance_config_map="igs-dagster-instance"),
        ["dagster"], "dagster-run-test", user_defined_k8s_config=instance_level.merge(tag).run_k8s_config)
    pod = job.spec.template.spec
    assert pod.containers[0].resources.limits == {"nvidia.com/gpu": "1"}
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert pod.security_context.fs_group == 1000


# --------------------------------------------------------------------------- Caddy


def test_caddyfile_routes():
    text = CADDYFILE.read_text()
    assert "reverse_proxy 127.0.0.1:3000" in text and "reverse_proxy 127.0.0.1:3111" in text
    ui = text[text.index("handle {"):]
    assert "basicauth" in ui and "{$IGS_BASIC_AUTH_HASH}" in ui
    api = text[text.index("handle_path /igs-api/*"):text.index("handle {")]
    assert "basicauth" not in api  # the API has its own bearer token


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy not installed")
def test_caddy_validates_the_caddyfile(tmp_path: Path):
    hashed = subprocess.run(["caddy", "hash-password", "--plaintext", "x y"], capture_output=True,
                            text=True, check=True).stdout.strip()
    env = {**os.environ, "IGS_DOMAIN": "igs.example.com", "IGS_ACME_EMAIL": "me@example.com",
           "IGS_BASIC_AUTH_USER": "me", "IGS_BASIC_AUTH_HASH": hashed,
           "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(["caddy", "validate", "--adapter", "caddyfile", "--config", str(CADDYFILE)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- service files

NASTY_ENV = {
    "IGS_VAULT_DIR": '/home/me/My Vault "quoted" <&> 100% $HOME',
    "IGS_AGENT__STYLE_FILE": "C:\\style\\notes.md",
    "IGS_MULTI": "line one\nline two\ttab",
}


def _systemd_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        assert current is not None
        current.append((key, value))
    return sections


def _systemd_words(value: str, *, dollar: bool = False) -> list[str]:
    """systemd's unquoting of a value: double-quoted words, C escapes, %% and ($$) specifiers."""
    words, i = [], 0
    while i < len(value):
        if value[i] == " ":
            i += 1
            continue
        assert value[i] == '"', value
        i += 1
        out = []
        while value[i] != '"':
            ch = value[i]
            if ch == "\\":
                nxt = value[i + 1]
                if nxt == "x":
                    out.append(chr(int(value[i + 2:i + 4], 16)))
                    i += 4
                    continue
                out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"'}[nxt])
                i += 2
                continue
            if ch == "%":
                assert value[i + 1] == "%", "unescaped specifier"
                i += 1
            if dollar and ch == "$":
                assert value[i + 1] == "$", "unescaped variable"
                i += 1
            out.append(ch)
            i += 1
        words.append("".join(out))
        i += 1
    return words


def _render(kind: str, tmp_path: Path, **kwargs) -> dict[str, str]:
    return service.render_services(
        kind, python=sys.executable, project_dir=tmp_path / "my project",
        dagster_home=tmp_path / "dagster home", env=dict(NASTY_ENV), **kwargs)


def test_systemd_units(tmp_path: Path):
    files = _render("systemd", tmp_path)
    assert set(files) == {"igs-dagster.service", "igs-api.service"}
    for name, command in (("igs-dagster.service", "dev"), ("igs-api.service", "api")):
        sections = _systemd_sections(files[name])
        svc = dict(sections["Service"])
        assert svc["Restart"] == "always"
        assert svc["WorkingDirectory"] == str(tmp_path / "my project")
        assert _systemd_words(svc["ExecStart"], dollar=True) == [sys.executable, "-m", "igs_dagster.cli", command]
        env = dict(_systemd_words(v)[0].split("=", 1) for k, v in sections["Service"] if k == "Environment")
        for key, value in NASTY_ENV.items():
            assert env[key] == value
        assert env["DAGSTER_HOME"] == str(tmp_path / "dagster home")
        assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
        assert dict(sections["Install"])["WantedBy"] == "default.target"
        assert "User" not in svc


def test_systemd_system_units(tmp_path: Path):
    unit = _render("systemd", tmp_path, user_mode=False)["igs-api.service"]
    sections = _systemd_sections(unit)
    assert dict(sections["Service"])["User"]
    assert dict(sections["Install"])["WantedBy"] == "multi-user.target"
    assert dict(sections["Unit"])["After"] == "network-online.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_accepts_the_units(tmp_path: Path):
    (tmp_path / "my project").mkdir()
    names = []
    for name, text in _render("systemd", tmp_path, user_mode=False).items():
        (tmp_path / name).write_text(text)
        names.append(str(tmp_path / name))
    done = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True)
    if "Failed to initialize manager" in done.stderr or "Failed to lookup" in done.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {done.stderr.strip()}")
    problems = [line for line in done.stderr.splitlines() if Path(line.split(":")[0]).name in
                ("igs-dagster.service", "igs-api.service")]
    assert not problems, done.stderr


def test_launchd_plists(tmp_path: Path):
    files = _render("launchd", tmp_path, log_dir=tmp_path / "data" / "logs")
    assert set(files) == {"com.igs.dagster.plist", "com.igs.api.plist"}
    for name, command in (("com.igs.dagster.plist", "dev"), ("com.igs.api.plist", "api")):
        job = plistlib.loads(files[name].encode())
        assert job["Label"] == name.removesuffix(".plist")
        assert job["KeepAlive"] is True and job["RunAtLoad"] is True
        assert job["ProgramArguments"] == [sys.executable, "-m", "igs_dagster.cli", command]
        assert job["WorkingDirectory"] == str(tmp_path / "my project")
        for key, value in NASTY_ENV.items():
            assert job["EnvironmentVariables"][key] == value
        assert job["EnvironmentVariables"]["DAGSTER_HOME"] == str(tmp_path / "dagster home")
        for key in ("StandardOutPath", "StandardErrorPath"):
            assert Path(job[key]).parent == tmp_path / "data" / "logs"
        assert "UserName" not in job
    assert "&lt;&amp;&gt;" in files["com.igs.api.plist"]  # escaped by plistlib, not by hand


def test_launchd_default_log_dir_follows_the_data_dir(tmp_path: Path):
    files = service.render_services("launchd", python=sys.executable, project_dir=tmp_path,
                                    dagster_home=tmp_path / "home", env={"IGS_DATA_DIR": str(tmp_path / "d")})
    job = plistlib.loads(files["com.igs.dagster.plist"].encode())
    assert job["StandardErrorPath"] == str(tmp_path / "d" / "logs" / "igs-dagster.err.log")
    daemon = plistlib.loads(_render("launchd", tmp_path, user_mode=False)["com.igs.api.plist"].encode())
    assert daemon["UserName"]


@pytest.mark.parametrize("bad", [
    {"python": "python3"},
    {"env": {"1BAD": "x"}},
    {"env": {"IGS_X": "nul\x00byte"}},
    {"kind": "upstart"},
])
def test_render_rejects_bad_input(bad: dict, tmp_path: Path):
    kwargs = {"kind": "systemd", "python": sys.executable, "project_dir": tmp_path,
              "dagster_home": tmp_path, "env": {}, **bad}
    kind = kwargs.pop("kind")
    with pytest.raises(ValueError):
        service.render_services(kind, **kwargs)


def test_launchd_rejects_control_characters(tmp_path: Path):
    with pytest.raises(ValueError, match="com.igs"):
        service.render_services("launchd", python=sys.executable, project_dir=tmp_path,
                                dagster_home=tmp_path, env={"IGS_X": "bell\x07"})


def test_install_hints():
    user = service.install_hint("systemd")
    assert "~/.config/systemd/user" in user and "systemctl --user enable --now igs-dagster.service igs-api.service" in user
    assert "loginctl enable-linger" in user
    assert "sudo systemctl enable --now" in service.install_hint("systemd", user_mode=False)
    agents = service.install_hint("launchd", log_dir=Path("/Users/me/.local/share/igs-dagster/logs"))
    assert "launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/com.igs.dagster.plist" in agents
    assert "mkdir -p ~/Library/LaunchAgents /Users/me/.local/share/igs-dagster/logs" in agents
    assert "launchctl bootstrap system /Library/LaunchDaemons/com.igs.api.plist" in service.install_hint(
        "launchd", user_mode=False)
    with pytest.raises(ValueError):
        service.install_hint("upstart")  # type: ignore[arg-type]


def test_cli_prints_the_service_files(capsys: pytest.CaptureFixture[str]):
    from igs_dagster.cli import main

    assert main(["service", "install", "--kind", "systemd", "--print"]) == 0
    out = capsys.readouterr().out
    assert "# ---- igs-dagster.service ----" in out and "Restart=always" in out
    assert "systemctl --user enable --now" in out


def test_k8s_gpu_tag_on_ingest_job_matches_deploy_file():
    import json

    from igs_dagster.defs.video.jobs import K8S_GPU_CONFIG

    shipped = json.loads((REPO / "deploy" / "helm" / "transcribe-gpu-k8s-config.json").read_text())
    assert shipped == K8S_GPU_CONFIG
