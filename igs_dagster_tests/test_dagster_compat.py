"""Dagster's internals behind one door (igs_dagster/dagster_compat.py): no other module under
igs_dagster/ names a private Dagster module or attribute, and each entry still holds on the
Dagster we pin. A test here failing after an upgrade names the entry to look at again."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster import dagster_compat as compat

PACKAGE = Path(__file__).resolve().parent.parent / "igs_dagster"
PRIVATE = ("dagster._", "dg._")


def _private_names(path: Path) -> list[str]:
    """Private Dagster names a module imports, reads (`dg._x`) or names in a string (`runpy`,
    argv), docstrings left out."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dagster._"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("dagster._")]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in ("dg", "dagster") and node.attr.startswith("_"):
            found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings and node.value.startswith(PRIVATE):
            found.append(node.value)
    return found


def test_no_module_but_the_compat_module_uses_a_private_dagster_name():
    offenders = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "dagster_compat.py" and (names := _private_names(path))
    }
    assert not offenders, offenders


def test_the_compat_module_imports_no_dagster_when_imported():
    code = ("import sys; import igs_dagster.dagster_compat, igs_dagster.cli.stack, "
            "igs_dagster.cli.daemon_probe; print('dagster' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


# 1 ---------------------------------------------------------------------------------------------
def test_the_daemon_module_runs_and_the_console_script_is_its_alias():
    assert importlib.util.find_spec(f"{compat.DAEMON_MODULE}.__main__") is not None
    (script,) = [e for e in importlib.metadata.entry_points(group="console_scripts")
                 if e.name == compat.DAEMON_SCRIPT]
    assert script.value.startswith(f"{compat.DAEMON_MODULE}.")
    done = subprocess.run([sys.executable, "-m", compat.DAEMON_MODULE, "run", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--workspace" in done.stdout, done.stdout + done.stderr


# 2 ---------------------------------------------------------------------------------------------
def test_the_code_server_watch_is_patched_where_the_watch_thread_reads_it():
    from dagster._grpc import server_watcher

    before = server_watcher.WATCH_INTERVAL
    assert before == 1, "Dagster changed its code-server watch interval"
    try:
        assert compat.slow_code_server_watch(10.0)
        assert server_watcher.WATCH_INTERVAL == 10.0
    finally:
        server_watcher.WATCH_INTERVAL = before
    # the watch loop takes the module's value when it starts, not a copy made at import
    import inspect

    source = inspect.getsource(server_watcher.watch_grpc_server_thread)
    assert '"watch_interval", WATCH_INTERVAL)' in source


# 3 ---------------------------------------------------------------------------------------------
def test_the_retry_consumer_reads_its_interval_from_the_environment():
    code = ("from dagster._daemon.auto_run_reexecution import event_log_consumer as c; "
            "print(c._INTERVAL_SECONDS)")
    env = {**os.environ, compat.RETRY_CONSUMER_INTERVAL_ENV: "15"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "15", out.stdout + out.stderr


# 4 ---------------------------------------------------------------------------------------------
def test_the_pool_recheck_cap_is_patched_and_read_by_the_waiting_loop():
    """The definitions patch it at import (defs/video/jobs.py): no claim waits longer than 1 s."""
    from dagster._core.execution.plan import instance_concurrency_context as claims

    from igs_dagster.defs.video.jobs import POOL_CLAIM_RECHECK_S

    assert compat.recheck_pool_slots_every(POOL_CLAIM_RECHECK_S)
    assert claims.MAX_CONCURRENCY_CLAIM_BLOCKED_INTERVAL == POOL_CLAIM_RECHECK_S == 1.0
    waits = [claims._calculate_timeout_interval(None, attempt) for attempt in range(60)]
    assert max(waits) == POOL_CLAIM_RECHECK_S, waits


# 5 ---------------------------------------------------------------------------------------------
def test_the_sensor_daemon_still_wakes_every_five_seconds():
    from dagster._daemon import sensor

    from igs_dagster.defs.events import INTERVAL_S

    assert sensor.MIN_INTERVAL_LOOP_TIME == compat.SENSOR_DAEMON_WAKE_S == INTERVAL_S + 1


# 6 ---------------------------------------------------------------------------------------------
def test_the_grpc_info_tag_is_the_launchers():
    from dagster._core.storage.tags import GRPC_INFO_TAG

    assert compat.GRPC_INFO_TAG == GRPC_INFO_TAG


# 7-10: on a real instance ----------------------------------------------------------------------
@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@dg.op
def _noop() -> None:
    return None


@dg.job
def _job():
    _noop()


def test_a_gone_worker_is_reported_with_dagsters_reason(instance):
    run = instance.create_run_for_job(_job, status=dg.DagsterRunStatus.STARTED)
    compat.report_worker_gone(instance, run, "worker gone")
    after = instance.get_run_by_id(run.run_id)
    assert after.status == dg.DagsterRunStatus.FAILURE
    assert after.tags.get("dagster/failure_reason") == "UNEXPECTED_TERMINATION"


def test_a_runs_pool_slots_are_freed(instance):
    storage = instance.event_log_storage
    storage.set_concurrency_slots("gpu", 1)
    assert storage.claim_concurrency_slot("gpu", "run-a", "transcript").is_claimed
    compat.free_pool_slots(instance, "run-a")
    assert storage.get_concurrency_info("gpu").active_slot_count == 0


def test_the_newest_event_record_id_moves_with_every_event(instance):
    before = compat.newest_event_record_id(instance)
    run = instance.create_run_for_job(_job)
    instance.report_run_failed(run)
    assert compat.newest_event_record_id(instance) > before


def test_check_executions_read_back_as_text(instance):
    parts = dg.DynamicPartitionsDefinition(name="things")

    @dg.asset(partitions_def=parts)
    def thing(context) -> None:
        if context.partition_key == "b":
            raise RuntimeError("no thing")  # its check is planned, never evaluated

    @dg.asset_check(asset=thing, partitions_def=parts)
    def thing_check() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, description="broken on purpose")

    instance.add_dynamic_partitions("things", ["a", "b"])
    for key in ("a", "b"):
        dg.materialize([thing, thing_check], instance=instance, partition_key=key, raise_on_error=False)
    planned, failed = compat.check_executions(
        instance, dg.AssetCheckKey(dg.AssetKey("thing"), "thing_check"), 5)
    assert (failed.partition, failed.status, failed.description) == ("a", "FAILED", "broken on purpose")
    assert failed.run_id and failed.at > 0
    assert (planned.partition, planned.status, planned.description) == ("b", "PLANNED", None)


# 11 (the race itself: test_watchdog.test_a_step_that_missed_the_hand_off_of_a_free_slot_gets_it,
# and docs/pool-slot-race.md on a bare instance) ------------------------------------------------
def test_the_storage_calls_the_slot_workaround_needs_exist(instance):
    storage = instance.event_log_storage
    assert storage.supports_global_concurrency_limits
    for name in ("get_concurrency_keys", "get_concurrency_infos", "assign_pending_steps"):
        assert callable(getattr(storage, name, None)), name
    storage.set_concurrency_slots("gpu", 1)
    info = storage.get_concurrency_infos(["gpu"])["gpu"]
    assert (info.slot_count, info.assigned_step_count, info.pending_step_count) == (1, 0, 0)
    assert compat.assign_stranded_pool_slots(instance, logging.getLogger("test")) == "pool slots: none stranded"
