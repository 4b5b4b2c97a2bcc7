"""`igs loop resume` on a real Dagster deployment: the resumed loop's runs come from the same
inbox sensor and run-outcome chaining as a new loop's, with run keys of their own
(`loop:<id>:resume-<n>:<k>`), so none is taken for one of the loop's earlier runs.

Two loops side by side, each on its own project: R (its second story is implemented wrong
until the test removes `agent-state/buggy-S2`; one attempt per story) and C (its implementor
hangs on its first run: cancelled there, then resumed). Helpers, stand-in agents and the
dispatcher: test_loop_dagster.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.system_log import read_entries
from igs_dagster.defs.loop.resources import RESUME_TAG
from igs_dagster_tests.conftest import pid_gone
from igs_dagster_tests.dagster_env import DagsterEnv
from igs_dagster_tests.loop.conftest import S_ADD, S_SLUG, git, make_project
from igs_dagster_tests.test_loop_dagster import (
    _runs,
    _state,
    loop_deployment,
    start_loop,
    wait_done,
    write_prd,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory):
    with loop_deployment(tmp_path_factory.mktemp("loop-resume"), "buggy-S2") as env:
        yield env


@pytest.fixture(scope="module")
def loops(deployment: DagsterEnv) -> dict[str, tuple[str, Path]]:
    root = deployment.root
    started = {}
    for name, stories, extra in (("R", [S_ADD, S_SLUG], ("--max-attempts", "1")),
                                 ("C", [S_ADD | {"id": "K1"}], ())):
        project = make_project(root / f"project-{name}")
        started[name] = (start_loop(deployment, project, write_prd(root / f"prd-{name}.json",
                                                                   stories), *extra), project)
    return started


def _refused(env: DagsterEnv, loop_id: str, message: str) -> None:
    record = env.data / "loops" / loop_id / "loop.json"
    before = record.read_text() if record.exists() else None
    out = env.igs("loop", "resume", loop_id)
    assert (out.returncode, out.stdout, out.stderr) == (2, "", f"igs: error: {message}\n")
    assert (record.read_text() if record.exists() else None) == before


def test_failed_second_story_resumed_to_complete(deployment: DagsterEnv, loops) -> None:
    loop_id, project = loops["R"]
    state = wait_done(deployment, loop_id)
    assert [state.stories[s].status for s in ("S1", "S2")] == ["passed", "skipped"]
    s1_commits = state.stories["S1"].attempts[0].commits
    instance = deployment.instance()
    first = [r.dagster_run.run_id for r in _runs(instance, loop_id)]

    (deployment.root / "agent-state" / "buggy-S2").unlink()  # the agent gets it right now
    out = deployment.igs("loop", "resume", loop_id, check=True).stdout
    assert out.startswith(f"resumed loop {loop_id} (resume 1, was incomplete): from story S2;")
    state = wait_done(deployment, loop_id)
    assert state.stories["S1"].status == state.stories["S2"].status == "passed"
    assert state.stories["S1"].attempts[0].commits == s1_commits  # kept, not redone
    assert len(state.stories["S1"].attempts) == 1
    assert [a.verdict for a in state.stories["S2"].attempts] == ["FAIL", "PASS"]

    runs = _runs(instance, loop_id)
    assert [r.dagster_run.run_id for r in runs[:len(first)]] == first
    resumed = runs[len(first):]
    keys = [r.dagster_run.tags["dagster/run_key"] for r in runs]
    assert len(set(keys)) == len(keys)
    assert [r.dagster_run.job_name for r in resumed] == ["loop_story", "loop_finish"]
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in resumed)
    assert all(r.dagster_run.tags[RESUME_TAG] == "1" for r in resumed)
    assert keys[len(first):] == [f"loop:{loop_id}:resume-1:0", f"loop:{loop_id}:resume-1:4"]
    assert resumed[0].dagster_run.tags["dagster/sensor_name"] == "igs_events"

    log = git(project, "log", "--format=%H %s", f"agent-loop/{loop_id}")
    assert s1_commits[0] in log and log.count(f"feat: [{loop_id}] [S1] ") == 1
    assert f"feat: [{loop_id}] [S2] attempt-2 — Slugify titles" in log
    status = deployment.igs("loop", "status", loop_id, check=True).stdout
    print(f"\n$ igs loop resume {loop_id}\n{out}\n$ igs loop status {loop_id}\n{status}")
    assert status.startswith(f"loop {loop_id}: complete\n") and "\nresumed  #1 at " in status
    assert f"loop:{loop_id}:resume-1:0" in status
    assert f"merge: git -C {project} merge --no-ff agent-loop/{loop_id}" in status
    logged = [e for e in read_entries(deployment.vault / "system" / "system-log.jsonl")
              if e.action == "loop.resume" and loop_id in e.detail]
    assert len(logged) == 1

    _refused(deployment, loop_id,
             f"loop {loop_id} is complete: every story passed, nothing to resume")
    _refused(deployment, "loop-20250101-000000-abcd",
             f"no loop 'loop-20250101-000000-abcd' in {deployment.data / 'loops'}")


def test_cancelled_loop_resumed_goes_on(deployment: DagsterEnv, loops) -> None:
    loop_id, _ = loops["C"]
    pids = deployment.root / "agent-state" / "pids-K1"
    deployment.wait_for(pids.exists, 180, "the hanging implementor")
    agent_pid, child_pid = map(int, pids.read_text().split())
    _refused(deployment, loop_id,
             f"loop {loop_id} is running: only a failed, incomplete or cancelled loop can be "
             f"resumed (igs loop cancel {loop_id} stops it)")

    out = deployment.igs("loop", "cancel", loop_id, check=True).stdout
    assert out.startswith(f"loop {loop_id}: cancelled (its agent was stopped)")
    assert pid_gone(agent_pid) and pid_gone(child_pid)  # no orphan
    instance = deployment.instance()
    deployment.wait_for(lambda: all(r.dagster_run.is_finished for r in _runs(instance, loop_id)),
                        60, "the cancelled run to end")

    out = deployment.igs("loop", "resume", loop_id, check=True).stdout
    assert re.match(rf"resumed loop {loop_id} \(resume 1, was cancelled\): from story K1 "
                    r"attempt 1 \(implement\)", out), out
    state = wait_done(deployment, loop_id)
    assert state.stories["K1"].status == "passed"
    assert [a.verdict for a in state.stories["K1"].attempts] == ["PASS"]
    assert _state(deployment, loop_id).resume == 1
    row = next(line for line in deployment.igs("loop", "status", check=True).stdout.splitlines()
               if line.startswith(loop_id))
    assert row.split()[2] == "complete" and row.split()[-1] == "1"
