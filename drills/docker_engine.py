"""A private Docker engine for the docker drill: Debian's `docker.io` started by hand with its own
data root, exec root and socket in a temp folder, no bridge and no iptables rules (every
container shares the host's network: traffic stays on 127.0.0.1), and images built from Debian
packages because no image registry is reachable.

The base image (debootstrap --variant=minbase bookworm + python3, pip) is cached as a tarball in
~/.cache/igs-dagster/docker/ (key: its inputs), so only the first run pays for debootstrap.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path

# Debian's docker.io CLI (20.10: BuildKit built in). A newer CLI elsewhere on PATH (e.g.
# /usr/local/bin/docker 28) wants the buildx plugin for BuildKit builds, which is not installed.
DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
COMPOSE = "/usr/bin/docker-compose"
DEBOOTSTRAP = "/usr/sbin/debootstrap"
# package -> a file it installs; tini provides docker-init (`init: true` in compose and runs)
PACKAGES = {
    "docker.io": DOCKERD, "docker-compose": COMPOSE, "debootstrap": DEBOOTSTRAP,
    "tini": "/usr/bin/docker-init",
}
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "igs-dagster" / "docker"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-pip", "ca-certificates")
BASE_IMAGE = "igs-base:bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class DockerUnavailable(RuntimeError):
    """The engine cannot be installed or started here (the reason says why)."""


def missing_packages() -> list[str]:
    return sorted({pkg for pkg, path in PACKAGES.items() if not Path(path).exists()})


def ensure_installed() -> list[str]:
    """Install the engine, compose, debootstrap and docker-init with apt-get when root and
    missing; return what was installed."""
    need = missing_packages()
    if not need:
        return []
    if os.geteuid() != 0:
        raise DockerUnavailable(f"not root and missing: {' '.join(need)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need]):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise DockerUnavailable(f"{' '.join(argv[:2])} failed: {proc.stderr.strip()[-500:]}")
    return need


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources), else the default."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in text.split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines()
                if ":" in line and not line.lstrip().startswith("#") and not line.startswith(" ")
            )
            suites = fields.get("Suites", "").split()
            if SUITE in suites:
                for uri in fields.get("URIs", "").split():
                    if "security" not in uri:
                        return uri.strip()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and SUITE in parts and "security" not in line:
                uri = next(p for p in parts[1:] if "://" in p)
                return uri
    return DEFAULT_MIRROR


def _processes_under(root: Path) -> list[int]:
    """Pids whose command line mentions `root` (dockerd, its containerd and shims)."""
    needle = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


class Engine:
    """`dockerd` on a socket of its own; `stop()` removes every container and the engine."""

    def __init__(self, root: Path | None = None) -> None:
        # a short path: the socket's path must fit a sockaddr_un (108 bytes)
        self.root = Path(root or tempfile.mkdtemp(prefix="igs-dockerd-"))
        self.sock = self.root / "docker.sock"
        self.log = self.root / "dockerd.log"
        self.env = {
            **os.environ, "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_BUILDKIT": "1",
            "DOCKER_CONFIG": str(self.root / "client"),
        }
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> float:
        """Start dockerd; return seconds until it answered."""
        started = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [DOCKERD, "--bridge=none", "--iptables=false", "--ip-forward=false",
                 "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "--pidfile", str(self.root / "docker.pid"), "-H", f"unix://{self.sock}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        while True:
            if self.proc.poll() is not None:
                raise DockerUnavailable(f"dockerd exited ({self.proc.returncode}): {self.log_tail()}")
            if self.docker("version", check=False, timeout=10).returncode == 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise DockerUnavailable(f"dockerd did not answer in {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.5)

    def log_tail(self, n: int = 1500) -> str:
        with suppress(OSError):
            return self.log.read_text(errors="replace")[-n:]
        return ""

    def docker(self, *args: str, check: bool = True, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])} failed ({proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        return proc

    def has_image(self, name: str) -> bool:
        return self.docker("image", "inspect", name, check=False).returncode == 0

    def stop(self) -> list[int]:
        """Remove all containers, stop dockerd (and its containerd), remove the data root.
        Return the pids still alive under the engine's folder afterwards (expected: none)."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq", check=False, timeout=60).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False, timeout=180)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        deadline = time.monotonic() + 15
        left = _processes_under(self.root)
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = _processes_under(self.root)
        for pid in left:  # containerd/shims of this engine only (their cmdline names our root)
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # overlay mounts a crashed engine may leave behind, deepest first
        with suppress(OSError):
            mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
            for mount in sorted((m for m in mounts if m.startswith(str(self.root))), reverse=True):
                subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        return left

    # -- images ---------------------------------------------------------------------------------

    def base_image(self) -> dict:
        """Import the debootstrap base (built once, then from the cache); return timings."""
        mirror = apt_mirror()
        key = hashlib.sha256(f"{SUITE}|minbase|{','.join(BASE_PACKAGES)}|{mirror}".encode()).hexdigest()[:12]
        tarball = CACHE / f"base-{SUITE}-{key}.tar"
        info: dict = {"tarball": str(tarball), "mirror": mirror, "cached": tarball.is_file()}
        if not tarball.is_file():
            started = time.monotonic()
            CACHE.mkdir(parents=True, exist_ok=True)
            rootfs = Path(tempfile.mkdtemp(prefix="igs-base-", dir=CACHE))
            try:
                proc = subprocess.run(
                    [DEBOOTSTRAP, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                     SUITE, str(rootfs), mirror],
                    capture_output=True, text=True, timeout=1200,
                )
                if proc.returncode != 0:
                    raise DockerUnavailable(f"debootstrap failed: {(proc.stderr or proc.stdout)[-800:]}")
                for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                    for item in (rootfs / junk).glob("*"):
                        if item.is_file():
                            item.unlink()
                partial = tarball.with_suffix(".tar.part")
                subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
                partial.rename(tarball)
            finally:
                shutil.rmtree(rootfs, ignore_errors=True)
            info["debootstrap_s"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        self.docker("import", str(tarball), BASE_IMAGE)
        info["import_s"] = round(time.monotonic() - started, 1)
        return info

    def cached_build(self, tag: str, context: Path, dockerfile: Path, **build_args: str) -> dict:
        """`docker build` an image that depends only on its files and the base; kept in the cache
        as a `docker save` tarball keyed by those files."""
        digest = hashlib.sha256()
        for path in sorted(p for p in context.rglob("*") if p.is_file()):
            digest.update(path.name.encode() + path.read_bytes())
        digest.update(repr(sorted(build_args.items())).encode())
        tarball = CACHE / f"{tag.replace(':', '-')}-{digest.hexdigest()[:12]}.tar"
        started = time.monotonic()
        if tarball.is_file():
            self.docker("load", "-i", str(tarball))
            return {"cached": True, "load_s": round(time.monotonic() - started, 1)}
        self.build(tag, context, dockerfile, **build_args)
        partial = tarball.with_suffix(".tar.part")
        self.docker("save", "-o", str(partial), tag)
        partial.rename(tarball)
        return {"cached": False, "build_s": round(time.monotonic() - started, 1)}

    def build(self, tag: str, context: Path, dockerfile: Path, timeout: float = 1800, **build_args: str) -> float:
        """`docker build --network host` (BuildKit); the system CA bundle goes in as the
        `ca_bundle` build secret (docker/Dockerfile uses it for downloads, never stores it)."""
        argv = ["build", "--network", "host", "--progress", "plain", "-f", str(dockerfile), "-t", tag]
        for name, value in build_args.items():
            argv += ["--build-arg", f"{name}={value}"]
        bundle = Path(os.environ.get("SSL_CERT_FILE") or CA_BUNDLE)
        if bundle.is_file():
            argv += ["--secret", f"id=ca_bundle,src={bundle}"]
        started = time.monotonic()
        self.docker(*argv, str(context), timeout=timeout)
        return time.monotonic() - started

    def image_size(self, name: str) -> int:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", name).stdout.strip())
