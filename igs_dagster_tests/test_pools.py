"""The `gpu` pool's limit comes from dagster.yaml alone (`concurrency: pools: default_limit: 1`):
on a real instance prepared as `igs` prepares it, with no limit stored and no start-up code,
steps in the pool run one at a time across separate processes, Dagster stores the limit at the
first claim, and a limit the operator set instead is kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg

from igs_dagster.defs.instance import GPU_POOL
from igs_dagster_tests.dagster_env import DagsterEnv

# a job whose one step holds the pool for a while, run by `execute_in_process` in its own
# process (threads in one process deadlock on Dagster's logging lock)
WORKER = """
import json, sys, time
import dagster as dg

POOL = sys.argv[1]

@dg.op(pool=POOL)
def hold() -> list:
    start = time.time()
    time.sleep(1.5)
    return [start, time.time()]

@dg.job(executor_def=dg.in_process_executor)
def pooled():
    hold()

with dg.DagsterInstance.get() as instance:
    print(json.dumps(pooled.execute_in_process(instance=instance).output_for_node("hold")))
"""


def _limits(instance: dg.DagsterInstance) -> dict[str, tuple[int, bool]]:
    return {p.name: (p.limit, p.from_default) for p in instance.event_log_storage.get_pool_limits()}


def _hold_together(dep: DagsterEnv, n: int) -> list[tuple[float, float]]:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, GPU_POOL], env=dep.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    spans = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
        spans.append(tuple(json.loads(out.strip().splitlines()[-1])))
    return sorted(spans)


def _overlap(spans: list[tuple[float, float]]) -> bool:
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


def test_the_pool_limit_is_dagster_yamls_and_the_operators_stays(tmp_path: Path):
    dep = DagsterEnv.create(tmp_path)
    assert "default_limit: 1" in (dep.home / "dagster.yaml").read_text()
    instance = dep.instance()
    try:
        assert GPU_POOL not in _limits(instance)  # nothing stored before a step claims the pool
        spans = _hold_together(dep, 3)
        assert not _overlap(spans), f"steps in the pool overlapped: {spans}"
        assert _limits(instance)[GPU_POOL] == (1, True)  # stored by Dagster, from dagster.yaml

        instance.event_log_storage.set_concurrency_slots(GPU_POOL, 2)  # a bigger GPU
        spans = _hold_together(dep, 2)
        assert _overlap(spans), f"a limit of 2 ran the steps one at a time: {spans}"
        assert _limits(instance)[GPU_POOL] == (2, False)
    finally:
        instance.dispose()
