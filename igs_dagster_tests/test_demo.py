"""The README's first command: `igs demo` ingests the bundled clip through the Dagster assets
on embedded defaults and prints the note's path; running it again changes nothing."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from igs_dagster_tests.dagster_env import DagsterEnv

pytestmark = pytest.mark.slow


def test_demo_prints_note_path_and_is_idempotent(tmp_path):
    env = DagsterEnv.create(tmp_path)
    del env.env["DAGSTER_HOME"]  # the demo must pick the persistent home in the data folder itself
    first = env.igs("demo", check=True)
    note = Path(first.stdout.strip().splitlines()[-1])
    assert note.is_file() and note.is_relative_to(env.vault)
    text = note.read_text()
    assert "ask not what your country can do for you" in text.lower()
    assert "## Executive Summary" in text and "enriched_by: builtin" in text
    # the transcript step says which backend and model run (and, on a Mac, how to pick mlx)
    assert "transcriber: faster-whisper with the bundled tiny.en model" in first.stderr
    # issue 13: screenshots in the note, subtitles beside the archived media, search at 8 s
    shots = list((env.vault / "Resources" / "videos" / "attachments" / note.stem).glob("*.jpg"))
    assert shots and f"![[Resources/videos/attachments/{note.stem}/{shots[0].name}|480]]" in text
    archived = next((env.data / "archive").glob(f"*/{note.stem}"))
    assert (archived / "video.en.srt").is_file() and (archived / "video.en.vtt").is_file()
    assert (archived / shots[0].name).is_file()
    found = env.igs("search", "what you can do for your country", "--json", check=True)
    import json

    hit = json.loads(found.stdout)[0]
    assert hit["slug"] == note.stem and hit["start"] == 8.0
    before = note.read_bytes()
    daily = next((env.vault / "Daily").glob("*.md"))

    second = env.igs("demo", check=True)
    assert second.stdout.strip().splitlines()[-1] == str(note)
    assert note.read_bytes() == before
    assert daily.read_text().count(f"[[{note.stem}]]") == 1

    home = env.data / "dagster_home"
    instance = dg.DagsterInstance.from_config(str(home))
    runs = instance.get_run_records()
    assert len(runs) == 2 and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
    from igs_dagster.defs.video.checks import CHECK_KEYS, failed_checks

    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(CHECK_KEYS)
    assert set(latest) == set(CHECK_KEYS), "every check ran"
    assert failed_checks(instance) == []
