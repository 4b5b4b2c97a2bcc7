"""The run-outcome part of the `igs_events` sensor: starts after existing history, sees each finished run once per
cursor, and one failing part (system log, notifications) does not keep the others from work."""

from __future__ import annotations

import json

import dagster as dg

from igs_dagster.core.system_log import read_entries
from igs_dagster.defs import outcomes
from igs_dagster.defs.events import igs_events


@dg.asset
def trivial() -> int:
    return 1


@dg.asset
def broken() -> int:
    raise RuntimeError("boom")


def _tick(instance, cursor):
    """One tick of the sensor; `cursor` is the outcome part's (None: a first tick)."""
    whole = json.dumps({"inbox": 0, "outcomes": json.loads(cursor)}) if cursor else None
    result = igs_events(dg.build_sensor_context(instance=instance, cursor=whole))
    assert isinstance(result, dg.SensorResult)
    return result


def _skipped(result) -> bool:
    return result.skip_reason is not None and not result.run_requests


def _outcomes(result) -> str:
    return json.dumps(json.loads(result.cursor)["outcomes"])


def _lines(settings) -> list:
    return read_entries(settings.system_log) if settings.system_log.exists() else []


def test_first_tick_skips_history_then_each_run_is_handled_once(igs_env):
    with dg.instance_for_test() as instance:
        dg.materialize([trivial], instance=instance)  # finished before the sensor existed
        first = _tick(instance, None)
        assert _skipped(first)
        start = _outcomes(first)  # the cursor the first tick stored
        assert json.loads(start)["success"] >= 0 and json.loads(start)["failure"] == -1

        assert _skipped(_tick(instance, start))  # nothing finished since
        assert _lines(igs_env) == []

        ok = dg.materialize([trivial], instance=instance)
        bad = dg.materialize([broken], instance=instance, raise_on_error=False)
        result = _tick(instance, start)
        assert not result.run_requests
        lines = _lines(igs_env)
        assert {(line.action, line.run_id) for line in lines} == {
            ("trivial.succeeded", ok.run_id), ("broken.failed", bad.run_id)}
        after = json.loads(_outcomes(result))
        assert after["success"] > json.loads(start)["success"] and after["failure"] >= 0
        # a re-evaluated tick (same cursor) writes nothing twice; the next one sees nothing new
        _tick(instance, start)
        assert len(_lines(igs_env)) == len(lines)
        assert _skipped(_tick(instance, _outcomes(result)))


def test_a_failing_part_does_not_block_the_others(igs_env, monkeypatch):
    calls = []

    def failing_log(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(outcomes, "log_run_stages", failing_log)
    monkeypatch.setattr(outcomes, "notify_run", lambda instance, run, settings: calls.append(run.run_id) or [])
    with dg.instance_for_test() as instance:
        ok = dg.materialize([trivial], instance=instance)
        result = _tick(instance, json.dumps({k: -1 for k in outcomes.OUTCOMES}))
        assert calls == [ok.run_id]  # notifications still went out
        assert json.loads(_outcomes(result))["success"] >= 0  # and the cursor moved on
