"""Figure 10: the cost of being always on. `igs dev` (webserver + daemon + code servers, the
persistent DAGSTER_HOME of a fresh data folder) with no runs and an empty inbox: CPU time of the
whole process tree over a fixed window after a warm-up, read from the kernel's per-process tick
counters (psutil `cpu_times`: user + system), and the sum of their resident sets.

CPU *time* rather than utilisation sampled over wall time: on a shared, loaded machine other
processes stretch wall time and waiting, not the CPU the tree itself uses. Each process is
counted from its first sighting in the window (a process that starts inside the window counts
from zero); the figure is CPU-seconds / window-seconds in percent of one core.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from bench.common import PYTHON, REPO, Record
from bench.context import Context

RSS_GOAL_MB = 600.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def role(cmdline: list[str]) -> str:
    """A short name for one process of the `dagster dev` tree."""
    text = " ".join(cmdline)
    if "igs_dagster.cli.stack" in text:
        return "igs dev (supervisor)"
    if "dagster_webserver" in text or "dagster-webserver" in text:
        return "webserver"
    if "_daemon" in text or "dagster-daemon" in text:
        return "daemon"
    if "code-server" in text:
        return "code server (proxy)"
    if "api grpc" in text:
        return "code server"
    if "dev" in cmdline:
        return "dagster dev"
    return os.path.basename(cmdline[0]) if cmdline else "?"


def _tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu(proc) -> float | None:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except Exception:  # noqa: BLE001 - gone between listing and reading
        return None


def measure_tree(pid: int, window_s: float, sample_s: float = 2.0) -> dict:
    """CPU seconds and RSS of `pid` and its descendants over `window_s` seconds."""
    first: dict[int, tuple[float, str, object]] = {}  # pid -> (cpu at first sight, role, proc)
    last: dict[int, float] = {}
    rss_sums: list[float] = []
    rss_by_role: dict[str, list[float]] = {}
    started = time.monotonic()
    while True:
        rss = 0.0
        per_role: dict[str, float] = {}
        for proc in _tree(pid):
            cpu = _cpu(proc)
            if cpu is None:
                continue
            if proc.pid not in first:
                try:
                    name = role(proc.cmdline())
                except Exception:  # noqa: BLE001
                    name = "?"
                # a process born inside the window counts from zero
                first[proc.pid] = (cpu if not rss_sums else 0.0, name, proc)
            last[proc.pid] = cpu
            try:
                mem = proc.memory_info().rss / 1e6
            except Exception:  # noqa: BLE001
                continue
            rss += mem
            name = first[proc.pid][1]
            per_role[name] = per_role.get(name, 0.0) + mem
        rss_sums.append(rss)
        for name, mem in per_role.items():
            rss_by_role.setdefault(name, []).append(mem)
        elapsed = time.monotonic() - started
        if elapsed >= window_s:
            break
        time.sleep(min(sample_s, window_s - elapsed))
    window = time.monotonic() - started
    cpu_by_role: dict[str, float] = {}
    for p, (cpu0, name, _) in first.items():
        cpu_by_role[name] = cpu_by_role.get(name, 0.0) + (last[p] - cpu0)
    cpu_s = sum(cpu_by_role.values())
    return {
        "window_s": round(window, 1),
        "cpu_s": round(cpu_s, 2),
        "cpu_percent_of_core": round(100 * cpu_s / window, 2),
        "processes": len(first),
        "rss_mb_median": round(statistics.median(rss_sums), 1),
        "rss_mb_max": round(max(rss_sums), 1),
        "cpu_s_by_process": {k: round(v, 2) for k, v in sorted(cpu_by_role.items())},
        "rss_mb_by_process": {k: round(statistics.median(v), 1) for k, v in sorted(rss_by_role.items())},
    }


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"igs dev exited ({proc.returncode}) before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return time.monotonic() - started
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"igs dev did not answer {url} within {timeout:.0f} s")


def idle_dev(root: Path, warmup_s: float, window_s: float, env_extra: dict | None = None) -> dict:
    """Start `igs dev` on a fresh data folder, wait `warmup_s` from launch, measure `window_s`."""
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGS_", "DAGSTER_"))}
    env.update({"IGS_DATA_DIR": str(root / "data"), "IGS_VAULT_DIR": str(root / "vault"),
                "PYTHONUNBUFFERED": "1", **(env_extra or {})})
    log_path = root / "dev.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [PYTHON, "-m", "igs_dagster.cli", "dev", "--port", str(port)],
            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    launched = time.monotonic()
    try:
        ready_s = _wait_http(f"http://127.0.0.1:{port}/server_info", proc, 300)
        time.sleep(max(0.0, warmup_s - (time.monotonic() - launched)))
        size0 = log_path.stat().st_size
        lines0 = log_path.read_bytes().count(b"\n")
        result = measure_tree(proc.pid, window_s)
        result["log_bytes_in_window"] = log_path.stat().st_size - size0
        result["log_lines_in_window"] = log_path.read_bytes().count(b"\n") - lines0
        result["ready_s"] = round(ready_s, 1)
        result["warmup_s"] = warmup_s
        if proc.poll() is not None:
            raise RuntimeError(f"igs dev exited ({proc.returncode}) during the window")
        return result
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def new_record(ctx: Context) -> Record:
    return Record(10, "Idle cost: `igs dev` with no runs and an empty inbox (CPU of the process tree)",
                  f"≤ 3 % of a core, ≤ {RSS_GOAL_MB:.0f} MB", 3.0, "%")


def run(ctx: Context) -> Record:
    rec = new_record(ctx)
    warmup, window = (30.0, 15.0) if ctx.quick else (90.0, 60.0)
    got = idle_dev(ctx.folder("fig10"), warmup, window)
    ctx.log(f"figure 10: {got['cpu_percent_of_core']:.1f} % of a core, {got['rss_mb_median']:.0f} MB "
            f"in {got['processes']} processes")
    rec.set_runs([got["cpu_percent_of_core"]])
    rec.details = got
    rss_met = got["rss_mb_median"] <= RSS_GOAL_MB
    rec.met = bool(rec.met) and rss_met
    by = ", ".join(f"{k} {v:.1f}" for k, v in got["cpu_s_by_process"].items())
    rec.note(
        f"{got['window_s']:.0f} s window after {warmup:.0f} s from launch: {got['cpu_s']:.1f} CPU-s "
        f"({by}); RSS {got['rss_mb_median']:.0f} MB in {got['processes']} processes (goal ≤ "
        f"{RSS_GOAL_MB:.0f} MB: {'met' if rss_met else 'NOT met'}); "
        f"{got['log_lines_in_window']} log lines in the window"
    )
    return rec
