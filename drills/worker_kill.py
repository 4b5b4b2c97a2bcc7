"""Drill 3: a run worker SIGKILLed during transcription (the ~66 s clip), twice.

A. Only the worker dies. Its parent, the code server that launched it, sees the child go and
   fails the run itself ("[DagsterApiServer] Run execution process ... was terminated").
B. The worker dies together with that code server (as when a process tree, a container or the
   whole machine goes down). Nothing is left to report the death: the DefaultRunLauncher cannot
   check workers, so without the `run_worker_watchdog` sensor the run would stay STARTED
   forever. The watchdog finds the dead pid and fails the run (UNEXPECTED_TERMINATION).

Either way `run_retries` re-executes the run from failure, run monitoring frees the `gpu` slot
the dead worker held, and the retry finishes the video without repeating the download or the
archive. Each note is written once and no partial transcript remains.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dagster as dg

from drills.common import (
    PYTHON,
    DrillResult,
    check_outcome,
    dry_keys,
    opened,
    step_keys_started,
    tally,
    wait_until,
)
from igs_dagster.defs.system.watchdog import _worker_event

PHASES = (("A", False), ("B", True))  # (name, kill the code server too)


def _parent(pid: int) -> tuple[int, str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    ppid = int(stat[stat.rindex(")") + 2:].split()[1])
    cmdline = Path(f"/proc/{ppid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ppid, cmdline


def run(ctx, result: DrillResult) -> None:
    deployment = ctx.shared()
    if deployment.daemon is None or deployment.daemon.poll() is not None:
        deployment.start_daemon()
    keys = []
    for name, kill_server in PHASES:
        keys.append(_phase(ctx, result, deployment, name, kill_server))

    found = tally(result, deployment, keys)
    check_outcome(result, deployment, keys, found)


def _phase(ctx, result: DrillResult, deployment, name: str, kill_server: bool) -> str:
    url = ctx.media.add(ctx.kill_clip(), f"worker-kill-{name.lower()}.mp4")
    (key,) = dry_keys(deployment, url)
    folder = deployment.data / "media" / key
    details: dict = {"killed": "worker + its code server" if kill_server else "worker"}
    result.details[f"phase_{name}"] = details
    deployment.igs("send", url, check=True)

    with opened(deployment) as instance:
        def transcribing():
            for record in instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": key})):
                streaming = [p for p in folder.glob(".igs-tmp-transcript.json.*") if p.stat().st_size]
                if streaming and "transcript" in step_keys_started(instance, record.dagster_run.run_id):
                    return record.dagster_run
            return None

        first = wait_until(transcribing, 600, f"{name}: transcription to stream segments",
                           deployment, every=0.5)
        pid, _ = _worker_event(instance, first.run_id)
        if kill_server:
            ppid, cmdline = _parent(pid)
            if not (cmdline.startswith(PYTHON) and "dagster api grpc" in cmdline):
                raise AssertionError(f"worker {pid}'s parent {ppid} is not a code server: {cmdline[:200]}")
            os.kill(ppid, signal.SIGKILL)
            details["code_server_pid"] = ppid
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        details["worker_pid"] = pid
        result.check(not (folder / "transcript.json").exists(), f"{name}: killed mid-transcription")

        def failed():
            run = instance.get_run_by_id(first.run_id)
            return run if run.status == dg.DagsterRunStatus.FAILURE else None

        wait_until(failed, 240, f"{name}: the run to be failed", deployment)
        record = instance.get_run_record_by_id(first.run_id)
        details["failed_after_s"] = round(record.end_time - killed_at, 1)
        (failure,) = instance.get_records_for_run(
            first.run_id, of_type=dg.DagsterEventType.PIPELINE_FAILURE
        ).records
        engine = [
            r.event_log_entry.dagster_event.message or "" for r in instance.get_records_for_run(
                first.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
        ]
        message = failure.event_log_entry.dagster_event.message or ""
        if kill_server:
            details["detected_by"] = "run_worker_watchdog" if "run_worker_watchdog" in message else message[:120]
            result.check("run_worker_watchdog" in message and str(pid) in message,
                         f"{name}: the watchdog failed the run, naming the dead worker", message[:200])
            result.check(
                record.dagster_run.tags.get("dagster/failure_reason") == "UNEXPECTED_TERMINATION",
                f"{name}: failure reason UNEXPECTED_TERMINATION",
                record.dagster_run.tags.get("dagster/failure_reason"),
            )
        else:
            by_server = any("[DagsterApiServer]" in m and "terminated" in m for m in engine)
            details["detected_by"] = "code server" if by_server else (
                "run_worker_watchdog" if "run_worker_watchdog" in message else message[:120])
            result.check(by_server or "run_worker_watchdog" in message,
                         f"{name}: the death was noticed and reported", message[:200])

        def retried():
            for rec in instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": key})):
                run = rec.dagster_run
                if run.parent_run_id == first.run_id and run.status in (
                    dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE
                ):
                    return rec
            return None

        retry = wait_until(retried, 480, f"{name}: the retry run to finish", deployment)
        details["recovered_after_s"] = round(retry.end_time - killed_at, 1)
        result.check(retry.dagster_run.status == dg.DagsterRunStatus.SUCCESS, f"{name}: the retry succeeded")
        result.check(retry.dagster_run.tags.get("dagster/retry_number") == "1",
                     f"{name}: launched by run_retries", retry.dagster_run.tags.get("dagster/retry_number"))
        steps = step_keys_started(instance, retry.dagster_run.run_id)
        details["retry_steps"] = steps
        result.check("video_download" not in steps and "video_archive" not in steps,
                     f"{name}: download and archive not repeated", steps)
        result.check({"transcript", "vault_note", "enriched_summary"} <= set(steps),
                     f"{name}: transcript, note and summary re-run", steps)
        slots = instance.event_log_storage.get_concurrency_info("gpu")
        result.check(slots.active_slot_count == 0, f"{name}: no gpu slot left held", slots.active_slot_count)
    return key
