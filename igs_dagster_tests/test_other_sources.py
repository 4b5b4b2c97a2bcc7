"""Local audio files and pasted transcripts take the same path from `transcript` on."""

from __future__ import annotations

import dagster as dg
import pytest

from igs_dagster.core.events import TranscriptProcess, TranscriptProcessData
from igs_dagster.intake import accept
from igs_dagster.video.frontmatter import split_frontmatter
from igs_dagster_tests.dagster_env import handed

pytestmark = pytest.mark.slow


def _ingest(instance, settings, data: TranscriptProcessData) -> tuple[str, dg.ExecuteInProcessResult]:
    from igs_dagster.definitions import defs

    key = accept(TranscriptProcess(name="transcript.process", data=data), settings).key
    instance.add_dynamic_partitions("videos", [key])
    job = defs.resolve_job_def("video_ingest")
    return key, job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)


def test_local_file_and_pasted_text_become_notes(igs_env, jfk_mp3):
    text = (
        "Welcome to the weekly planning meeting.\n\n"
        "We agreed to ship the archive step first, then the transcription benchmarks.\n\n"
        "Action items: write the drills, measure the sensor, and review the loop."
    )
    with dg.instance_for_test() as instance:
        file_key, from_file = _ingest(instance, igs_env, TranscriptProcessData(
            file=jfk_mp3, source="podcast", title="Kennedy on the radio"))
        text_key, from_text = _ingest(instance, igs_env, TranscriptProcessData(
            text=text, source="meeting", title="Weekly planning"))
        assert from_file.success and from_text.success

        steps = {e.step_key for e in from_text.all_events if e.is_step_start}
        assert "transcript" in steps
        text_transcript = handed(igs_env, text_key, "transcript")
        assert text_transcript["backend"] == "text"  # Whisper skipped

    file_note = igs_env.vault_dir / "Resources" / "videos" / "kennedy-on-the-radio.md"
    meta, body = split_frontmatter(file_note.read_text())
    assert meta["source"] == "podcast" and meta["video_id"] == file_key
    assert "ask not what your country can do for you" in body.lower()
    assert str(igs_env.archive_dir) in meta["archive_path"]

    text_note = igs_env.vault_dir / "Resources" / "videos" / "weekly-planning.md"
    meta, body = split_frontmatter(text_note.read_text())
    assert meta["source"] == "meeting" and meta["video_id"] == text_key
    assert "Action items" in body and "enriched_by" in meta
