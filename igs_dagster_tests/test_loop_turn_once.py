"""One run per loop turn, whichever submitting path comes first (issue 24, item 5).

The push (from the run that ends a turn, `turns.push_next`) and the sensor's hand-off
(`chain_next`, when it sees that run succeed) both queue the next turn. Here they fire together,
from separate processes, against a real instance whose runs were launched through a real
webserver: each turn gets exactly one run, under the turn's own run id.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from bench.fig14_status import _free_port
from igs_dagster.core import webserver
from igs_dagster.defs.loop.resources import TURN_TAG
from igs_dagster.defs.loop.turns import turn_run_id
from igs_dagster.loop.prd import Prd
from igs_dagster.loop.state import load_loop, new_loop, save_loop
from igs_dagster_tests.dagster_env import PYTHON, REPO, DagsterEnv

LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
LAUNCH = """
mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }
"""

PATH = """
import sys, time
from pathlib import Path
import dagster as dg
from igs_dagster.core.settings import load_settings
from igs_dagster.defs.loop.resources import LoopSettings
from igs_dagster.defs.loop.sensors import chain_next
from igs_dagster.defs.loop.turns import push_next

role, go = sys.argv[1], Path(sys.argv[2])
pairs = [pair.split("=") for pair in sys.argv[3:]]  # loop id=the run that ended its turn
instance = dg.DagsterInstance.get()
settings = load_settings()


class Log:
    def info(self, message):
        print(role, message, flush=True)

    warning = info


from igs_dagster.definitions import defs

repository = defs.get_repository_def()
while not go.exists():
    time.sleep(0.001)
for loop_id, ended_id in pairs:
    ended = instance.get_run_by_id(ended_id)
    if role == "push":
        assert push_next(instance, repository, ended, settings, LoopSettings(), loop_id, Log())
    else:
        request = chain_next(instance, ended, settings, LoopSettings(), Log(), repository)
        assert request is None, request  # queued by the sensor itself, never left to a RunRequest
"""


@pytest.fixture
def served(tmp_path: Path):
    """A deployment's instance with its webserver (no daemon: queued runs stay queued)."""
    dep = DagsterEnv.create(tmp_path)
    port = _free_port()
    log = open(tmp_path / "webserver.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(  # noqa: S603
        [PYTHON, "-m", "dagster_webserver", "-m", "igs_dagster.definitions", "-h", "127.0.0.1",
         "-p", str(port)], env=dep.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while webserver.query(url, "{ __typename }", timeout=2) is None:
            assert proc.poll() is None and time.monotonic() < deadline, "webserver did not start"
            time.sleep(0.5)
        webserver.record(dep.data, "127.0.0.1", port, str(dep.home))
        yield dep, url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _running_loop(dep: DagsterEnv, n: int) -> str:
    prd = Prd.model_validate({"title": "t", "description": "d", "checks": {"test": "true"}, "stories": [
        {"id": "S1", "title": "one", "description": "", "acceptance_criteria": ["a"], "priority": 1},
        {"id": "S2", "title": "two", "description": "", "acceptance_criteria": ["b"], "priority": 2},
    ]})
    state = new_loop(dep.data / "loops", project=dep.root, prd_source=dep.root / "prd.json", prd=prd,
                     story_kinds={}, loop_id=f"loop-20260101-00000{n}-abcd")
    state.status, state.next_step = "running", "plan"
    save_loop(dep.data / "loops", state)
    return state.loop_id


def _ended_run(url: str, loop_id: str) -> str:
    """A loop run launched through the webserver, as the run that ended the turn."""
    location = webserver.query(url, LOCATIONS)["workspaceOrError"]["locationEntries"][0]["name"]
    params = {"selector": {"repositoryLocationName": location, "repositoryName": "__repository__",
                           "jobName": "loop_story"},
              "runConfigData": {"ops": {"loop_begin": {"config": {"loop_id": loop_id}}}}}
    result = webserver.query(url, LAUNCH, {"p": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def test_push_and_sensor_firing_together_make_one_run_per_turn(served) -> None:
    dep, url = served
    loops = [_running_loop(dep, n) for n in range(3)]
    pairs = [f"{loop_id}={_ended_run(url, loop_id)}" for loop_id in loops]
    go = dep.root / "go"
    procs = [subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", PATH, role, str(go), *pairs], env=dep.env, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for role in ("push", "sensor", "push", "sensor")]
    time.sleep(8)  # all four have imported Dagster and wait at the line
    go.touch()
    said = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        said.append(out)
        assert proc.returncode == 0, out
    instance = dep.instance()
    for loop_id in loops:
        key = f"loop:{loop_id}:0"
        runs = instance.get_runs(dg.RunsFilter(tags={TURN_TAG: key}))
        assert [r.run_id for r in runs] == [turn_run_id(key)], "\n".join(said)
        assert runs[0].status == dg.DagsterRunStatus.QUEUED and runs[0].job_name == "loop_story"
        assert load_loop(dep.data / "loops", loop_id).status == "running"
    lines = [line for out in said for line in out.splitlines()]
    for loop_id in loops:  # a path queued it; the others found it made (or queued it once more)
        assert any(loop_id in line and line.endswith(" queued") and "already" not in line
                   for line in lines), said
