"""The video pipeline through a real Dagster deployment: `igs send` → sensor tick → queued run
→ run worker → note and daily link on disk; pools keep transcriptions apart; the dagster CLI
materializes and backfills; permanent errors fail at once with one line."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import (
    INGEST_STAGE_ACTIONS,
    DagsterEnv,
    step_intervals,
    stray_temp_files,
)

pytestmark = pytest.mark.slow
SUCCESS = dg.DagsterRunStatus.SUCCESS
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _runs_for(instance: dg.DagsterInstance, key: str) -> list:
    return [r for r in instance.get_run_records() if r.dagster_run.tags.get("dagster/partition") == key]


def _note_for(deployment: DagsterEnv, key: str) -> Path:
    from igs_dagster.video.frontmatter import split_frontmatter

    for path in (deployment.vault / "Resources" / "videos").glob("*.md"):
        if split_frontmatter(path.read_text())[0].get("video_id") == key:
            return path
    raise AssertionError(f"no note for {key}")


def _wait_success(deployment: DagsterEnv, instance, key: str, n: int = 1) -> list:
    def done():
        runs = _runs_for(instance, key)
        finished = [r for r in runs if r.dagster_run.status in FINISHED]
        return finished if len(finished) >= n else None

    runs = deployment.wait_for(done, 240, f"run for {key}")
    failed = [r for r in runs if r.dagster_run.status != SUCCESS]
    assert not failed, f"run failed: {[r.dagster_run.run_id for r in failed]}\n{deployment.igs('run', failed[0].dagster_run.run_id).stdout}"
    return runs


def test_send_sensor_run_writes_note_and_daily_link(deployment: DagsterEnv, media_server):
    url = media_server.add(SAMPLE_MP4, "kennedy-1961.mp4")
    key = deployment.key(url)
    sent = deployment.igs("send", url, check=True)
    assert key in sent.stdout

    instance = deployment.instance()
    (record,) = _wait_success(deployment, instance, key)
    run = record.dagster_run
    assert run.tags.get("dagster/sensor_name") == "igs_events"
    assert run.tags.get("dagster/max_runtime") == str(8 * 3600)  # from the job: sensor runs too

    note = _note_for(deployment, key)
    text = note.read_text()
    assert "ask not what your country can do for you" in text.lower()
    assert "enriched_by: builtin" in text
    daily = (deployment.vault / "Daily" / f"{date.today().isoformat()}.md").read_text()
    assert daily.count(f"[[{note.stem}]]") == 1

    transcript = json.loads((deployment.data / "media" / key / "transcript.json").read_text())
    assert transcript["segments"] and "fellow americans" in transcript["text"].lower()

    # claim check: the transcript's materialization records a path and small numbers only
    event = instance.get_latest_materialization_event(dg.AssetKey("transcript"))
    metadata = event.asset_materialization.metadata
    assert Path(metadata["transcript"].value).is_file()
    assert len(json.dumps({k: str(v.value) for k, v in metadata.items()})) < 2000

    # every stage logged once in the system log (by the run-status sensor, a tick later)
    log = deployment.vault / "system" / "system-log.jsonl"

    def stage_lines():
        if not log.exists():
            return None
        lines = [json.loads(x) for x in log.read_text().splitlines()]
        mine = [x for x in lines if x.get("run_id") == run.run_id]
        return mine if len(mine) >= len(INGEST_STAGE_ACTIONS) else None

    mine = deployment.wait_for(stage_lines, 60, "system log lines")
    assert sorted(x["action"] for x in mine) == INGEST_STAGE_ACTIONS
    assert not stray_temp_files(deployment.data / "media", deployment.vault)

    # sending the same video again queues no second run
    deployment.igs("send", url, check=True)
    ticks_before = len(instance.get_ticks(_sensor_origin_id(instance), _sensor_selector_id(instance)))
    deployment.wait_for(
        lambda: len(instance.get_ticks(_sensor_origin_id(instance), _sensor_selector_id(instance))) > ticks_before + 1,
        60, "two more sensor ticks",
    )
    assert len(_runs_for(instance, key)) == 1


def _sensor_state(instance):
    states = [s for s in instance.all_instigator_state() if s.name == "igs_events"]
    assert states, "sensor never ticked"
    return states[0]


def _sensor_origin_id(instance):
    return _sensor_state(instance).instigator_origin_id


def _sensor_selector_id(instance):
    return _sensor_state(instance).selector_id


def test_two_partitions_never_transcribe_at_once(deployment: DagsterEnv, media_server, long_mp4):
    urls = [media_server.add(long_mp4, f"parallel-{i}.mp4") for i in range(2)]
    keys = [deployment.key(u) for u in urls]
    deployment.igs("send", *urls, check=True)
    instance = deployment.instance()
    records = [_wait_success(deployment, instance, k)[0] for k in keys]
    intervals = sorted(step_intervals(instance, r.dagster_run.run_id, "transcript") for r in records)
    assert all(intervals)
    (s1, e1), (s2, e2) = intervals
    assert e1 <= s2, f"transcriptions overlapped: {intervals}"
    # and the runs themselves did overlap (so the pool, not luck, kept them apart)
    starts = sorted(r.start_time for r in records)
    ends = sorted(r.end_time for r in records)
    assert starts[1] < ends[0], "runs did not overlap; the test proves nothing"


def test_cli_materialize_and_backfill(deployment: DagsterEnv, media_server):
    urls = [media_server.add(SAMPLE_MP4, f"backfill-{i}.mp4") for i in range(2)]
    keys = [deployment.key(u) for u in urls]
    instance = deployment.instance()
    # register sources without a sensor run: add partitions, as a user backfilling would
    from igs_dagster.core.inbox import EventQueue, Source

    queue = EventQueue(deployment.data / "queue.sqlite3")
    for key, url in zip(keys, urls, strict=True):
        queue.register_source(Source(key, "url", url, "web", None))
    deployment.dagster("instance", "info", check=True)
    instance.add_dynamic_partitions("videos", keys)

    # backfill through the run queue (the daemon launches it)
    deployment.dagster(
        "job", "backfill", "-m", "igs_dagster.definitions", "-j", "video_ingest",
        "--partitions", ",".join(keys), "--noprompt", check=True,
    )
    for key in keys:
        (record,) = _wait_success(deployment, instance, key)
        assert record.dagster_run.tags.get("dagster/backfill")
        assert record.dagster_run.tags.get("dagster/max_runtime") == str(8 * 3600)  # backfills too

    # one partition, one asset, from the CLI: the note is rewritten identically, daily link once
    note = _note_for(deployment, keys[0])
    before = note.read_bytes()
    deployment.dagster(
        "asset", "materialize", "-m", "igs_dagster.definitions", "--select", "vault_note",
        "--partition", keys[0], check=True,
    )
    assert note.read_bytes() == before
    daily = (deployment.vault / "Daily" / f"{date.today().isoformat()}.md").read_text()
    assert daily.count(f"[[{note.stem}]]") == 1


def test_permanent_error_fails_at_once_with_one_line(deployment: DagsterEnv, media_server):
    url = media_server.url("no-such-video.mp4")
    key = deployment.key(url)
    deployment.igs("send", url, check=True)
    instance = deployment.instance()

    def finished():
        runs = [r for r in _runs_for(instance, key) if r.dagster_run.status in FINISHED]
        return runs or None

    (record,) = deployment.wait_for(finished, 180, "failed run")
    assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    report = json.loads(deployment.igs("run", record.dagster_run.run_id, "--json", check=True).stdout)
    download = next(s for s in report["steps"] if s["step"] == "video_download")
    assert download["status"] == "FAILURE" and download["attempts"] == 1
    assert "404" in download["error"] and "\n" not in download["error"]
    assert not (deployment.data / "media" / key).exists() or not any((deployment.data / "media" / key).iterdir())
