"""The coding loop under `igs dev` (code server, webserver, daemon): the run that ends a turn
queues the next one itself, under the turn's run id (defs/loop/turns.py), and the igs_events
sensor, seeing that run end, finds it made: one run per turn."""

from __future__ import annotations

import dagster as dg
import pytest

from bench.fig14_status import start_stack, stop_stack
from igs_dagster.defs.loop.turns import turn_run_id
from igs_dagster_tests.dagster_env import DagsterEnv
from igs_dagster_tests.loop.conftest import S_ADD, S_SLUG, make_project
from igs_dagster_tests.test_loop_dagster import _agent_env, _runs, start_loop, wait_done, write_prd

pytestmark = pytest.mark.slow


def test_each_turn_queues_the_next_run(tmp_path) -> None:
    dep = DagsterEnv.create(tmp_path, **_agent_env(tmp_path))
    project = make_project(tmp_path / "project")
    # F2 is implemented wrong on its first attempt: a loop_attempt turn besides the stories
    prd = write_prd(tmp_path / "prd.json", [S_ADD, S_SLUG | {"id": "F2"}])
    stack = start_stack(dep)
    try:
        loop_id = start_loop(dep, project, prd)
        state = wait_done(dep, loop_id)
        instance = dep.instance()
        runs = [r.dagster_run for r in _runs(instance, loop_id)]
        status = dep.igs("loop", "status", loop_id, check=True).stdout
    finally:
        stop_stack(stack)
    # `igs loop status` shows each run's key, pushed runs too (they have no Dagster run key)
    rows = {line.split()[0]: line.split()[3] for line in status.splitlines()
            if line.split() and line.split()[0] in {r.run_id[:8] for r in runs}}
    assert rows == {r.run_id[:8]: r.tags["igs/turn"] for r in runs}, status
    assert [r.job_name for r in runs] == ["loop_story", "loop_story", "loop_attempt", "loop_finish"]
    assert [len(s.attempts) for s in state.stories.values()] == [1, 2]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    turns = [r.tags["igs/turn"] for r in runs]
    assert turns == [f"loop:{loop_id}:{n}" for n in (0, 1, 2, 4)]
    # the first run came from the inbox through the sensor; every later one was pushed
    assert runs[0].tags["dagster/sensor_name"] == "igs_events"
    assert [r.tags.get("igs/trigger") for r in runs[1:]] == ["loop.push"] * 3
    assert not any("dagster/sensor_name" in r.tags for r in runs[1:])
    for earlier, later in zip(runs, runs[1:], strict=False):  # queued behind the project's slot
        said = [e.user_message for e in instance.all_logs(earlier.run_id)]
        assert any(f"run {later.run_id} queued" in m for m in said), said
    assert all(r.run_id == turn_run_id(r.tags["igs/turn"]) for r in runs[1:])


def test_a_stalled_webserver_never_makes_a_second_run_of_a_turn(tmp_path) -> None:
    """Issue 24, item 5. The webserver stops answering (SIGSTOP: a long GC pause, a swapped-out
    process) while a loop runs, and resumes after the loop is done. No turn may get a second
    run: not from a push the webserver carries out late, after the sensor queued the turn."""
    import os
    import signal
    import time

    import psutil

    from igs_dagster.core import webserver

    dep = DagsterEnv.create(tmp_path, **_agent_env(tmp_path))
    project = make_project(tmp_path / "project")
    prd = write_prd(tmp_path / "prd.json", [S_ADD, S_SLUG])
    stack = start_stack(dep)
    server = next(p for p in psutil.Process(stack.pid).children(recursive=True)
                  if "dagster_webserver" in " ".join(p.cmdline()))
    try:
        loop_id = start_loop(dep, project, prd)
        instance = dep.instance()
        dep.wait_for(lambda: any(r.dagster_run.status == dg.DagsterRunStatus.STARTED
                                 for r in _runs(instance, loop_id)), 240, "the loop's first run")
        os.kill(server.pid, signal.SIGSTOP)
        try:
            state = wait_done(dep, loop_id, timeout=400)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        url = webserver.find(dep.data, dep.home)
        dep.wait_for(lambda: webserver.query(url, "{ __typename }", timeout=5), 120, "the webserver")
        time.sleep(5)  # what it had received while stopped is carried out by now
        runs = [r.dagster_run for r in _runs(instance, loop_id)]
    finally:
        stop_stack(stack)
    assert state.status == "complete"
    turns = [r.tags["igs/turn"] for r in runs]
    assert sorted(turns) == sorted(set(turns)), turns  # one run per turn
    assert len(turns) == 3
