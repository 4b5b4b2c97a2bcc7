"""Stage lines come from each finished run's event log: one per step, written once, with the
one-line reason for failures, whatever launched the run."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import pytest

from igs_dagster.core.inbox import EventQueue, Source
from igs_dagster.defs.system.log_sensors import STAGES, log_run_stages
from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import INGEST_STAGE_ACTIONS, step_intervals

STEP_OF = {stage: step for step, (stage, _) in STAGES.items()}

pytestmark = pytest.mark.slow


def _run(instance, key: str, url: str, settings) -> dg.ExecuteInProcessResult:
    from igs_dagster.definitions import defs

    EventQueue(settings.queue_db).register_source(Source(key, "url", url, "web", None))
    instance.add_dynamic_partitions("videos", [key])
    job = defs.resolve_job_def("video_ingest")
    return job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)


def test_stage_lines_once_per_step_with_reasons(igs_env, media_server):
    with dg.instance_for_test() as instance:
        ok = _run(instance, "stage-ok", media_server.add(SAMPLE_MP4, "stages.mp4"), igs_env)
        bad = _run(instance, "stage-404", media_server.url("missing.mp4"), igs_env)
        assert ok.success and not bad.success
        ends = {}
        for step in STEP_OF.values():
            end = step_intervals(instance, ok.run_id, step)[1]
            ends[step] = datetime.fromtimestamp(end, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for result in (ok, bad):
            run = instance.get_run_by_id(result.run_id)
            assert log_run_stages(instance, run, igs_env) > 0
            assert log_run_stages(instance, run, igs_env) == 0  # a re-evaluated tick

    lines = [json.loads(x) for x in igs_env.system_log.read_text().splitlines()]
    ok_lines = [x for x in lines if x["run_id"] == ok.run_id]
    assert sorted(x["action"] for x in ok_lines) == INGEST_STAGE_ACTIONS
    assert all(x["partition"] == "stage-ok" for x in ok_lines)
    # each line carries its step's own end time (the event's timestamp), not the writing time
    for line in ok_lines:
        step = STEP_OF.get(line["action"].rsplit(".", 1)[0])
        if step is not None:  # the assets' steps (a check's step ends just like its asset's)
            assert line["timestamp"] == ends[step], (line, ends)
    (failed,) = [x for x in lines if x["run_id"] == bad.run_id]
    assert failed["action"] == "video.download.failed"
    assert "404" in failed["reason"] and "\n" not in failed["reason"]
