"""Figure 14: `igs status` and `igs runs`, each as a process, on an instance with 1,000 runs
while `igs dev` runs (its stack: code server, webserver, daemon). They read through the
webserver's GraphQL API and import no Dagster; the instance path (no webserver recorded) is
timed too, for comparison. The run history (finished ingest-like runs, one in ten failed) is
written once into the cache: about 1 s per run on SQLite."""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import time

from bench.common import PYTHON, Record, load_average
from bench.context import Context
from igs_dagster.core.process_groups import stop_process_group

GOAL_S = 1.0


def new_record(ctx: Context) -> Record:
    return Record(14, "`igs status` / `igs runs` on 1,000 runs (process wall time, `igs dev` up)",
                  f"< {GOAL_S:.0f} s each", GOAL_S, "s")


def _history(ctx: Context, count: int):
    from igs_dagster_tests.dagster_env import DagsterEnv

    root = ctx.cache / f"fig14-history-{count}"
    done = root / "done"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        dep = DagsterEnv.create(root)
        from bench.run_history import write_runs

        started = time.time()
        instance = dep.instance()
        write_runs(instance, count)
        instance.dispose()
        ctx.log(f"figure 14: wrote {count} runs in {time.time() - started:.0f} s")
        done.write_text(str(count))
    return DagsterEnv.create(root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(dep, timeout: float = 180) -> subprocess.Popen:
    """`igs dev`'s stack on a free loopback port; returns once its GraphQL answers."""
    from igs_dagster.core import webserver

    port = _free_port()
    log = open(dep.root / "stack.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [PYTHON, "-m", "igs_dagster.cli.stack", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(dep.data)],
        env=dep.env, cwd=dep.home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"igs dev's stack exited ({proc.returncode}): see {dep.root / 'stack.log'}")
        url = webserver.find(dep.data, dep.home)
        if url and webserver.query(url, "{ __typename }", timeout=2) is not None:
            return proc
        time.sleep(0.5)
    stop_stack(proc)
    raise RuntimeError(f"the webserver did not answer within {timeout:.0f} s")


def stop_stack(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        stop_process_group(proc.pid, grace_s=60)  # SIGTERM, SIGKILL what is left after 60 s
        proc.wait(10)


def _time(dep, args: list[str], reps: int) -> tuple[list[float], str]:
    times, out = [], ""
    for _ in range(reps):
        started = time.perf_counter()
        proc = dep.igs(*args, check=True)
        times.append(time.perf_counter() - started)
        out = proc.stdout
    return times, out


def run(ctx: Context) -> Record:
    rec = new_record(ctx)
    count = 5 if ctx.quick else 1000
    reps = 1 if ctx.quick else max(ctx.runs, 5)
    dep = _history(ctx, count)
    stack = start_stack(dep)
    try:
        load = load_average()
        fast = {name: _time(dep, args, reps) for name, args in
                (("status", ["status"]), ("runs", ["runs"]))}
        state = dep.data / "webserver.json"
        saved = state.read_text()
        state.unlink()  # the instance path, for comparison
        try:
            slow = {name: _time(dep, args, reps) for name, args in
                    (("status", ["status"]), ("runs", ["runs"]))}
        finally:
            state.write_text(saved)
    finally:
        stop_stack(stack)
    med = {k: statistics.median(v[0]) for k, v in fast.items()}
    worst = max(med, key=med.get)
    rec.set_runs(fast[worst][0])
    rec.met = all(m < GOAL_S for m in med.values()) and not ctx.quick
    rec.details = {"runs_in_instance": count, "reps": reps, "load_average": load,
                   "webserver": {k: v[0] for k, v in fast.items()},
                   "instance": {k: v[0] for k, v in slow.items()}}
    slow_med = {k: statistics.median(v[0]) for k, v in slow.items()}
    rec.note(f"{count} runs; through the webserver: status {med['status']:.2f} s, runs {med['runs']:.2f} s "
             f"(median of {reps}); without it (instance): status {slow_med['status']:.2f} s, "
             f"runs {slow_med['runs']:.2f} s; load average {json.dumps(load)}")
    ctx.log(f"figure 14: {rec.notes[-1]}")
    return rec
