"""The code location as Dagster loads it: every asset, job, sensor and asset check of
`igs_dagster.definitions`, their partitions and pools; `dg check defs`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parent.parent
VIDEO_ASSETS = {"video_download", "video_archive", "transcript", "vault_note", "enriched_summary",
                "search_index", "related_notes", "video_extras"}
JOBS = {"video_ingest", "loop_attempt", "loop_finish", "loop_story"}
SENSORS = {
    "igs_events": 4,    # new URLs, loop starts and chaining: someone waits on these
    "feed_sensor": 60,  # each feed has its own interval (15 min by default)
    "waiting_videos": 300,  # live streams and premieres queued again once due (issue 22)
    "igs_watchdog": 30,  # dead run workers, stranded pool slots: fails alone (issue 24)
}
ASSET_CHECKS = {  # a new check belongs here, so a lost one is noticed
    "enriched_summary:enriched_summary_check",
    "transcript:transcript_check",
    "vault_note:vault_note_check",
    "video_archive:video_archive_check",
}


@pytest.fixture(scope="module")
def repo():
    from igs_dagster.definitions import defs

    dg.Definitions.validate_loadable(defs)
    return defs.get_repository_def()


def test_every_asset_job_sensor_and_check_loads(repo):
    assets = {node.key.to_user_string() for node in repo.asset_graph.asset_nodes}
    assert assets == VIDEO_ASSETS
    assert {job.name for job in repo.get_all_jobs()} - {"__ASSET_JOB"} == JOBS
    assert {s.name: s.minimum_interval_seconds for s in repo.sensor_defs} == SENSORS
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in repo.sensor_defs)
    assert {k.to_user_string() for k in repo.asset_graph.asset_check_keys} == ASSET_CHECKS
    assert not repo.schedule_defs
    assert set(repo.get_top_level_resources()) == {
        "igs", "vault", "agent", "whisper", "archive_target", "igs_loop"}  # the settings (defs/resources.py)


def test_video_assets_partitions_and_pools(repo):
    for node in repo.asset_graph.asset_nodes:
        assert isinstance(node.partitions_def, dg.DynamicPartitionsDefinition), node.key
        assert node.partitions_def.name == "videos"
        assert node.group_name == "video"
        # only transcription takes the `gpu` pool: one Whisper model at a time
        assert node.pools == ({"gpu"} if node.key.to_user_string() == "transcript" else set()), node.key
    from igs_dagster.defs.instance import GPU_POOL

    assert GPU_POOL == "gpu"  # its limit: dagster.yaml (test_pools)


def test_ingest_job_runs_every_video_asset_in_one_process(repo):
    job = repo.get_job("video_ingest")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == VIDEO_ASSETS
    assert job.executor_def is dg.in_process_executor
    events = repo.get_sensor_def("igs_events")
    assert {t.job_name for t in events.targets} == {"video_ingest", "loop_story", "loop_attempt", "loop_finish"}


@pytest.mark.slow
def test_dg_check_defs_passes():
    dg_cli = Path(sys.executable).parent / "dg"
    proc = subprocess.run([str(dg_cli), "check", "defs"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr
