"""The run-worker watchdog on a real instance with real processes (no daemon): a STARTED run
whose worker process is gone is failed with reason UNEXPECTED_TERMINATION and marked for a run
retry; live workers, other launchers' runs, remote code servers and pids of other processes are
left alone. The daemon-driven case (SIGKILL during transcription → retry completes) is drill 3
(test_drills.py)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.utils import make_new_run_id

from igs_dagster.core import process_groups
from igs_dagster.dagster_compat import assign_stranded_pool_slots, stranded_pool_slots
from igs_dagster.defs.events import igs_events
from igs_dagster.defs.system import watchdog
from igs_dagster.defs.system.watchdog import Host, Worker, check_started_runs, worker_state
from igs_dagster.defs.system.watchdog_sensor import igs_watchdog
from igs_dagster_tests.dagster_env import DagsterEnv

LOCAL_GRPC = json.dumps({"host": "localhost", "socket": "/tmp/dagster-grpc.sock"})


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_worker_state_of_real_processes():
    # a fresh process reporting now, as a run worker does right after it starts
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        reported = time.time()
        assert worker_state(worker.pid, reported)[0] is Worker.ALIVE
        # a pid whose process started long after the worker reported: reused, so the worker is gone
        state, why = worker_state(worker.pid, reported - 3600)
        assert state is Worker.GONE and "after the worker reported" in why
        # a pid held by a process far older than the report: another pid namespace, hands off
        assert worker_state(worker.pid, reported + 3600)[0] is Worker.UNKNOWN
    finally:
        worker.kill()
        worker.wait()
    # A worker that reported two minutes ago and has exited since: GONE whether its pid is free
    # now (no such process) or already reused (a process started after the report): no race.
    assert worker_state(_dead_pid(), time.time() - 120)[0] is Worker.GONE
    assert worker_state(2**22 + 12345, time.time()) == (Worker.GONE, "no such process")


def test_zombie_counts_as_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # exited but not reaped yet
        info = process_groups.process_info(proc.pid)
        if info is None or info.exited:
            break
        time.sleep(0.05)
    try:
        assert worker_state(proc.pid, time.time())[0] is Worker.GONE
    finally:
        proc.wait()


@pytest.fixture
def instance(tmp_path):
    env = DagsterEnv.create(tmp_path / "deploy")
    with env.activated():
        inst = env.instance()
        yield inst
        inst.dispose()


def _started_run(instance: dg.DagsterInstance, pid: int | None, grpc: str | None = LOCAL_GRPC,
                 host_tag: str | None = None) -> dg.DagsterRun:
    """A STARTED run as the DefaultRunLauncher leaves it; `host_tag` may use {run_id}."""
    run_id = make_new_run_id()
    tags = {GRPC_INFO_TAG: grpc} if grpc else {}
    if host_tag:
        tags[watchdog.HOST_TAG] = host_tag.format(run_id=run_id)
    run = instance.add_run(dg.DagsterRun(job_name="video_ingest", run_id=run_id, tags=tags))
    instance.handle_new_event(_job_event(run, dg.DagsterEventType.PIPELINE_STARTING))
    if pid is not None:
        instance.report_engine_event(
            f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
        )
    instance.handle_new_event(_job_event(run, dg.DagsterEventType.PIPELINE_START))
    run = instance.get_run_by_id(run.run_id)
    assert run.status == dg.DagsterRunStatus.STARTED
    return run


def _job_event(run: dg.DagsterRun, kind: dg.DagsterEventType):
    from dagster._core.events import DagsterEvent
    from dagster._core.events.log import EventLogEntry

    event = DagsterEvent(event_type_value=kind.value, job_name=run.job_name)
    return EventLogEntry(
        error_info=None, level="INFO", user_message="", run_id=run.run_id,
        timestamp=time.time(), dagster_event=event,
    )


def test_dead_worker_fails_its_run_for_a_retry(instance):
    worker = _sleeper()
    try:
        run = _started_run(instance, worker.pid)
        # the worker holds the `gpu` slot, as a transcription in flight does
        storage = instance.event_log_storage
        storage.set_concurrency_slots("gpu", 1)
        assert storage.claim_concurrency_slot("gpu", run.run_id, "transcript").is_claimed
        (verdict,) = check_started_runs(instance)
        assert verdict.action == "alive"
        assert instance.get_run_by_id(run.run_id).tags[watchdog.HOST_TAG] == Host.here().tag(run.run_id)

        worker.kill()
        worker.wait()
        (verdict,) = check_started_runs(instance)
        assert verdict.action == "failed" and "no such process" in verdict.reason
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    assert failed.tags["dagster/failure_reason"] == "UNEXPECTED_TERMINATION"
    assert failed.tags["dagster/will_retry"] == "true"  # run_retries (dagster.yaml) picks it up
    (record,) = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.PIPELINE_FAILURE
    ).records
    message = record.event_log_entry.dagster_event.message
    assert f"Run worker process {worker.pid}" in message and "run_worker_watchdog" in message
    assert check_started_runs(instance) == []  # nothing STARTED any more, nothing twice
    assert storage.get_concurrency_info("gpu").active_slot_count == 0  # freed for the retry


def test_runs_it_cannot_judge_are_left_alone(instance):
    gone = _dead_pid()
    cases = {
        "cli": _started_run(instance, gone, grpc=None),  # `dagster job execute`: no launcher tag
        "remote": _started_run(instance, gone, grpc=json.dumps({"host": "gpu-box", "port": 4000})),
        "other_host": _started_run(instance, gone, host_tag="elsewhere boot=b1 run={run_id}"),
        "no_pid": _started_run(instance, None),
    }
    verdicts = {v.run_id: v for v in check_started_runs(instance)}
    for name, run in cases.items():
        assert verdicts[run.run_id].action == "skip", name
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED, name


def test_host_tag_of_an_earlier_boot_or_another_run(instance):
    here = Host.here()
    worker = _sleeper()
    try:
        # seen alive before a reboot: whatever holds that pid now, the worker died with the boot
        rebooted = _started_run(instance, worker.pid, host_tag=f"{here.name} boot=old-boot run={{run_id}}")
        # a tag copied from the run this one retries says nothing about this run's worker
        inherited = _started_run(instance, worker.pid, host_tag=f"elsewhere boot=b1 run={make_new_run_id()}")
        verdicts = {v.run_id: v for v in check_started_runs(instance)}
    finally:
        worker.kill()
        worker.wait()
    if here.boot:
        assert verdicts[rebooted.run_id].action == "failed"
        assert "machine restarted" in verdicts[rebooted.run_id].reason
    assert verdicts[inherited.run_id].action == "alive"
    assert instance.get_run_by_id(inherited.run_id).tags[watchdog.HOST_TAG] == here.tag(inherited.run_id)


def test_sensor_reports_in_its_skip_reason(instance):
    worker = _sleeper()
    try:
        _started_run(instance, worker.pid)
        result = igs_watchdog(dg.build_sensor_context(instance=instance))
        assert "1 started runs: 1 workers alive, 0 gone" in str(result.skip_message)
        # the igs_events sensor (inbox, outcomes) leaves it to igs_watchdog
        events = igs_events(dg.build_sensor_context(instance=instance))
        assert "started runs" not in str(events.skip_reason.skip_message)
    finally:
        worker.kill()
        worker.wait()


def test_a_step_that_missed_the_hand_off_of_a_free_slot_gets_it(instance):
    storage = instance.event_log_storage
    storage.set_concurrency_slots("gpu", 1)  # what `igs` start-up applies
    assert storage.claim_concurrency_slot("gpu", "run-a", "transcript").is_claimed
    # Run B starts waiting in the very moment run A frees the slot (Dagster's claim path, step
    # by step): B finds no unassigned slot, A frees it and finds nobody waiting, B registers.
    assert not storage.has_unassigned_slots("gpu")
    storage.free_concurrency_slot_for_step("run-a", "transcript")
    storage.add_pending_step("gpu", "run-b", "transcript", should_assign=False)
    for _ in range(3):  # B polls: left to Dagster it waits until another step frees a slot
        assert not storage.claim_concurrency_slot("gpu", "run-b", "transcript").is_claimed
    assert stranded_pool_slots(instance) == {"gpu": 1}

    result = igs_watchdog(dg.build_sensor_context(instance=instance))
    assert "pool slots: gpu 1 assigned" in str(result.skip_message)
    assert storage.claim_concurrency_slot("gpu", "run-b", "transcript").is_claimed
    # a step waiting behind a slot in use is not stranded: nothing to do, and nothing done
    assert not storage.claim_concurrency_slot("gpu", "run-c", "transcript").is_claimed
    assert stranded_pool_slots(instance) == {}
    assert assign_stranded_pool_slots(instance, logging.getLogger("test")) == "pool slots: none stranded"
    assert not storage.claim_concurrency_slot("gpu", "run-c", "transcript").is_claimed
