"""Kill the run's process in the middle of transcription, then re-execute from failure:
download and archive are not repeated, the note is written once, no partial file remains."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import date

import dagster as dg
import pytest

from igs_dagster_tests.dagster_env import PYTHON, REPO, DagsterEnv, ingest_job, stray_temp_files

pytestmark = pytest.mark.slow


def _steps_started(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    return [r.event_log_entry.dagster_event.step_key for r in records]


@pytest.mark.timeout(300)
def test_kill_during_transcription_then_reexecute_from_failure(tmp_path, media_server, kill_mp4):
    env = DagsterEnv.create(tmp_path / "deploy")
    url = media_server.add(kill_mp4, "long-talk.mp4")
    key = env.key(url)
    env.igs("send", url, check=True)  # registers the source (no daemon: nothing runs it)
    instance = env.instance()
    instance.add_dynamic_partitions("videos", [key])

    worker = subprocess.Popen(
        [PYTHON, "-m", "dagster", "job", "execute", "-m", "igs_dagster.definitions",
         "-j", "video_ingest", "--tags", f'{{"dagster/partition": "{key}"}}'],
        env=env.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        def transcribing():
            runs = instance.get_run_records()
            if runs and "transcript" in _steps_started(instance, runs[0].dagster_run.run_id):
                return runs[0].dagster_run
            return None

        run = env.wait_for(transcribing, 180, "transcription to start")
        partial = env.wait_for(
            lambda: list((env.data / "media" / key).glob(".igs-tmp-*")), 60, "transcript partial file"
        )
        assert partial  # transcription is streaming segments to its temp file right now
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)

    assert not (env.data / "media" / key / "transcript.json").exists()
    assert not (env.vault / "Resources" / "videos").exists()
    # the run worker died without reporting: mark the run failed and free the `gpu` slot it held,
    # as the daemon's run monitoring does (free_slots_after_run_end_seconds in dagster.yaml)
    instance.report_run_failed(instance.get_run_by_id(run.run_id))
    assert instance.event_log_storage.get_concurrency_info("gpu").active_slot_count == 1
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)

    with env.activated():
        result = dg.execute_job(
            dg.reconstructable(ingest_job), instance,
            tags={"dagster/partition": key},  # as the UI's "re-execute from failure" carries over
            reexecution_options=dg.ReexecutionOptions.from_failure(run.run_id, instance),
        )
    assert result.success
    started = _steps_started(instance, result.run_id)
    assert "video_download" not in started and "video_archive" not in started
    assert {"transcript", "vault_note", "enriched_summary"} <= set(started)

    notes = list((env.vault / "Resources" / "videos").glob("*.md"))
    assert len(notes) == 1
    daily = (env.vault / "Daily" / f"{date.today().isoformat()}.md").read_text()
    assert daily.count(f"[[{notes[0].stem}]]") == 1
    assert not stray_temp_files(env.data / "media", env.data / "archive", env.vault)
