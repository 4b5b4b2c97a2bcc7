"""Postgres mode: the same code with `IGS_POSTGRES__*` set keeps runs, the event log, schedules,
sensor cursors and pool limits in a real PostgreSQL server (started by the test), and the whole
pipeline runs through it: `igs send` → sensor → queued runs → run workers → notes, with the
`gpu` pool keeping transcriptions one at a time."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from drills.common import (
    SAMPLE_MP4,
    all_finished,
    new_deployment,
    notes_by_key,
    opened,
    send,
    transcript_intervals,
    wait_until,
)
from igs_dagster_tests.conftest import unavailable
from igs_dagster_tests.dagster_env import INGEST_STEPS, REPO, DagsterEnv, stray_temp_files
from igs_dagster_tests.postgres import PostgresServer, PostgresUnavailable

pytestmark = pytest.mark.slow


def _server() -> PostgresServer:
    try:
        return PostgresServer()
    except PostgresUnavailable as err:
        reason = str(err)
    unavailable(reason)  # skipped here, an error (exit 1) under CI=true


@pytest.fixture(scope="module")
def postgres():
    with _server() as server:
        yield server


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer):
    env = new_deployment(tmp_path_factory.mktemp("pg-deployment"), **postgres.igs_env())
    env.start_daemon()
    yield env
    env.stop_daemon()


def _rows(postgres: PostgresServer, sql: str, *params) -> list[tuple]:
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetchall()
    finally:
        conn.close()


def test_settings_switch_the_instance_to_postgres(deployment: DagsterEnv, postgres: PostgresServer):
    yaml_text = (deployment.home / "dagster.yaml").read_text()
    assert "scheme: postgresql+psycopg2" in yaml_text
    assert f"port: {postgres.port}" in yaml_text
    assert "{env: IGS_POSTGRES__PASSWORD}" in yaml_text and postgres.password not in yaml_text
    with opened(deployment) as instance:
        kinds = {type(s).__name__ for s in (
            instance.run_storage, instance.event_log_storage, instance.schedule_storage
        )}
        assert kinds == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}


def test_pipeline_through_the_run_queue_on_postgres(
    deployment: DagsterEnv, postgres: PostgresServer, media_server, long_mp4
):
    # one long talk first, so the two short ones are launched while it holds the `gpu` slot
    urls = [media_server.add(long_mp4, "pg-long-talk.mp4")] + [
        media_server.add(SAMPLE_MP4, f"pg-short-{i}.mp4") for i in range(2)
    ]
    keys = send(deployment, *urls)
    with opened(deployment) as instance:
        wait_until(lambda: all_finished(instance, keys), 600, "three runs", deployment, every=2)
        records = [r for r in instance.get_run_records(filters=dg.RunsFilter(job_name="video_ingest"))
                   if r.dagster_run.tags.get("dagster/partition") in keys]
        run_ids = [r.dagster_run.run_id for r in records]
        assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == sorted(keys)
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records)
        assert all(r.dagster_run.tags.get("dagster/sensor_name") == "igs_events" for r in records)

        # the pool: transcriptions one at a time, although the runs overlapped
        intervals = transcript_intervals(instance, run_ids)
        assert len(intervals) == 3
        for (_, end, _), (start, _, _) in zip(intervals, intervals[1:], strict=False):
            assert end <= start, f"transcriptions overlapped: {intervals}"
        spans = sorted((r.start_time, r.end_time) for r in records)
        assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False)), (
            "runs never overlapped; the pool check proves nothing"
        )

    # dagster.yaml's pools default_limit, stored by Dagster in Postgres at the first claim
    limits = _rows(postgres, 'SELECT concurrency_key, "limit" FROM concurrency_limits')
    assert limits == [("gpu", 1)]

    notes = notes_by_key(deployment.vault)
    assert all(notes[k] == 1 for k in keys), notes
    assert not stray_temp_files(deployment.data / "media", deployment.vault)

    # ...and all of it is in PostgreSQL, not in SQLite files under DAGSTER_HOME
    rows = dict(_rows(postgres, "SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", run_ids))
    assert rows == dict.fromkeys(run_ids, "SUCCESS")
    steps = _rows(
        postgres,
        "SELECT step_key, count(*) FROM event_logs WHERE run_id = ANY(%s) "
        "AND dagster_event_type = 'STEP_SUCCESS' GROUP BY step_key ORDER BY step_key",
        run_ids,
    )
    assert steps == [(s, 3) for s in INGEST_STEPS]
    partitions = {r[0] for r in _rows(
        postgres, "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'videos'"
    )}
    assert set(keys) <= partitions
    # the sensor's state (cursor) and its ticks that requested the runs
    assert _rows(postgres, "SELECT count(*) FROM jobs WHERE job_type = 'SENSOR' "
                 "AND job_body LIKE '%igs_events%'")[0][0] == 1
    ticks = _rows(postgres, "SELECT tick_body FROM job_ticks WHERE status = 'SUCCESS' "
                  "AND tick_body LIKE '%igs_events%'")
    assert all(any(run_id in body for (body,) in ticks) for run_id in run_ids)
    assert not list(deployment.home.rglob("*.db")), "SQLite storage files under DAGSTER_HOME"


@pytest.mark.parametrize("ci, outcome", [("true", "1 error"), ("", "1 skipped")])
def test_missing_postgres_fails_on_ci_and_skips_elsewhere(tmp_path, ci: str, outcome: str):
    """This module with no PostgreSQL (PG_BINDIR pointing at nothing), in a fresh pytest."""
    env = {**os.environ, "CI": ci, "PG_BINDIR": str(tmp_path / "no-postgres")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", f"{__file__}::test_settings_switch_the_instance_to_postgres",
         "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--rootdir", str(REPO)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert outcome in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "has no initdb" in proc.stdout
    assert proc.returncode == (1 if ci else 0)
