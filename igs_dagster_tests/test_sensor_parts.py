"""The sensors' parts fail alone and lose no work (issue 24, items 2 and 7).

- A loop hand-off that fails (the sensor's part that queues a loop's next run when it sees a
  loop run succeed) is tried again on the next ticks, not dropped with the cursor moving on;
  after RETRY_TICKS tries the loop is marked failed with the reason (`igs loop status`) and the
  system log says so.
- One part raising does not stop the others: with the run-worker watchdog broken, a real daemon
  still turns queued work into runs, and the watchdog's failure shows in its tick history.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.system_log import read_entries
from igs_dagster.defs import outcomes
from igs_dagster.defs.events import igs_events
from igs_dagster.defs.loop.resources import LOOP_TAG
from igs_dagster.loop.prd import Prd
from igs_dagster.loop.state import load_loop, new_loop, save_loop, state_path
from igs_dagster_tests.dagster_env import PYTHON, REPO, DagsterEnv


@dg.asset
def loop_turn() -> int:
    """Stands in for a loop run: what the outcome part reads of it is its `igs/loop` tag."""
    return 1


def _running_loop(settings, loop_id: str = "loop-20260101-000000-abcd") -> str:
    prd = Prd.model_validate({"title": "t", "description": "d", "checks": {"test": "true"}, "stories": [
        {"id": "S1", "title": "one", "description": "", "acceptance_criteria": ["a"], "priority": 1},
    ]})
    state = new_loop(settings.loops_dir, project=settings.data_dir, prd_source=settings.data_dir / "prd.json",
                     prd=prd, story_kinds={}, loop_id=loop_id)
    state.status, state.next_step = "running", "plan"
    save_loop(settings.loops_dir, state)
    return state.loop_id


def _tick(instance, cursor: str | None):
    result = igs_events(dg.build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, dg.SensorResult)
    return result


def _started(instance) -> str:
    """The cursor of a first tick (it starts after the runs already finished)."""
    return _tick(instance, None).cursor


def test_a_failed_handoff_is_tried_again_until_it_goes_through(igs_env) -> None:
    """The loop record cannot be read for a moment when the loop's run succeeds (a real
    failure: its file is not JSON). On main the part logged a warning, the cursor moved past
    the run, and the loop's next run was never requested."""
    loop_id = _running_loop(igs_env)
    record = state_path(igs_env.loops_dir, loop_id)
    good = record.read_bytes()
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        run = dg.materialize([loop_turn], instance=instance, tags={LOOP_TAG: loop_id})
        record.write_text("{ not json")
        cursors = []
        for _ in range(3):
            result = _tick(instance, cursor)
            assert not result.run_requests
            cursor = result.cursor
            cursors.append(json.loads(cursor)["outcomes"])
        record.write_bytes(good)
        result = _tick(instance, cursor)
    (request,) = result.run_requests
    for seen in cursors:
        assert seen["retry"][run.run_id]["parts"] == ["loop"]
        assert "unreadable" in seen["retry"][run.run_id]["error"]
    assert request.job_name == "loop_story" and request.tags["igs/turn"] == f"loop:{loop_id}:0"
    assert "retry" not in json.loads(result.cursor)["outcomes"]


def test_a_handoff_failing_for_good_marks_the_loop_failed(igs_env, monkeypatch, capsys) -> None:
    from igs_dagster.cli.app import main

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outcomes, "chain_next", broken)
    loop_id = _running_loop(igs_env)
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        run = dg.materialize([loop_turn], instance=instance, tags={LOOP_TAG: loop_id})
        for tick in range(outcomes.RETRY_TICKS):
            assert load_loop(igs_env.loops_dir, loop_id).status == "running", tick
            result = _tick(instance, cursor)
            cursor = result.cursor
        assert "retry" not in json.loads(cursor)["outcomes"]  # given up: not tried forever
    state = load_loop(igs_env.loops_dir, loop_id)
    assert state.status == "failed" and "No space left on device" in state.error
    assert "next run could not be queued" in state.error
    assert main(["loop", "status", loop_id]) == 0
    assert "No space left on device" in capsys.readouterr().out
    (line,) = [e for e in read_entries(igs_env.system_log) if e.action == "loop.handoff.failed"]
    assert line.run_id == run.run_id and "No space left on device" in line.reason


def test_one_part_raising_leaves_the_other_working(igs_env, monkeypatch) -> None:
    """The inbox part broken: the outcomes part still handles finished runs, the failure leads
    the tick's skip reason, and the inbox's cursor stays for the next tick."""
    from igs_dagster.defs import events

    def broken(*args):
        raise RuntimeError("inbox database is locked")

    monkeypatch.setattr(events, "inbox_part", broken)
    loop_id = _running_loop(igs_env)
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        dg.materialize([loop_turn], instance=instance, tags={LOOP_TAG: loop_id})
        result = _tick(instance, cursor)
    (request,) = result.run_requests  # the loop's next run, from the outcomes part
    assert request.tags["igs/turn"] == f"loop:{loop_id}:0"
    assert json.loads(result.cursor)["inbox"] == json.loads(cursor)["inbox"]
    with dg.instance_for_test() as instance:
        result = _tick(instance, None)
    assert result.skip_reason.skip_message.startswith("inbox FAILED: RuntimeError: inbox database is locked")


# --------------------------------------------------------------------------- a real daemon

FAULTY = "igs_dagster_tests.faulty_definitions"


def _ticks(instance, name: str) -> list:
    from dagster._core.definitions.run_request import InstigatorType

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.name == name:
            return instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
    return []


@pytest.mark.timeout(600)
def test_a_broken_watchdog_fails_alone_on_a_real_daemon(tmp_path: Path) -> None:
    """The daemon runs this project's code location with its run-worker watchdog raising
    (igs_dagster_tests/faulty_definitions.py). Queued work still becomes a run; the watchdog's
    tick is shown failed with its error. On main the watchdog ran inside `igs_events`, whose
    every tick then failed: nothing queued ever became a run."""
    dep = DagsterEnv.create(tmp_path)
    text = tmp_path / "standup.txt"
    text.write_text("We shipped the release. Next week we fix the flaky tests.\n")
    log = open(dep.root / "daemon.log", "ab")  # noqa: SIM115 - closed below
    dep.daemon = subprocess.Popen(  # noqa: S603 - as DagsterEnv.start_daemon, another module
        [PYTHON, "-m", "dagster._daemon", "run", "-m", FAULTY],
        env=dep.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        dep.igs("transcript", "--text-file", str(text), "--title", "Standup", "--source", "meeting",
                check=True)
        instance = dep.instance()
        runs = dep.wait_for(lambda: instance.get_run_records(), 150, "the queued transcript's run")
        failed = dep.wait_for(
            lambda: [t for t in _ticks(instance, "igs_watchdog") if t.status.value == "FAILURE"],
            300, "a failed igs_watchdog tick")
    finally:
        dep.stop_daemon()
        log.close()
    assert runs[0].dagster_run.tags.get("dagster/sensor_name") == "igs_events"
    error = failed[0].error.to_string()  # what the UI shows under the failed tick
    assert "watchdog FAILED: RuntimeError: watchdog broken on purpose" in error
    assert "pool slots: none stranded" in error  # the other part still ran
    assert all(t.status.value != "FAILURE" for t in _ticks(instance, "igs_events"))
