"""intake: one key per source, nothing written for a refused event, text by claim check."""

from __future__ import annotations

import sqlite3

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import parse_event
from igs_dagster.core.inbox import EventQueue
from igs_dagster.intake import accept
from igs_dagster.video.intake import note_video_id, source_for
from igs_dagster_tests.conftest import SAMPLE_MP4

VIDEO_ID = "dQw4w9WgXcQ"


def _event(name: str, **data) -> object:
    return parse_event({"name": name, "data": data})


def _note(vault, name: str, video_id: str):
    path = vault / "Resources" / "videos" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'---\nvideo_id: "{video_id}"\n---\nBody\n')
    return path


def test_source_for_has_no_side_effects(igs_env):
    text = _event("transcript.process", text="Hello there.", title="Greeting")
    source = source_for(text, igs_env)
    assert source.kind == "text" and source.key.startswith("text-greeting-")
    assert source.location == str(igs_env.data_dir / "inbox" / f"{source.key}.txt")
    assert not igs_env.data_dir.exists()  # deciding the key wrote nothing


def test_accepted_json_and_known_flag(igs_env):
    event = _event("video.download", url=f"https://youtu.be/{VIDEO_ID}")
    first = accept(event, igs_env)
    second = accept(_event("video.download", url=VIDEO_ID), igs_env)
    assert first.to_json() == {"event_id": 1, "name": "video.download", "key": VIDEO_ID,
                               "message": f"queued {VIDEO_ID}", "known": False}
    assert second.known is True and second.event_id == 2 and "already known" in second.message


def test_text_is_stored_once_and_keyed_by_content(igs_env):
    a = accept(_event("transcript.process", text="Line one.\r\nLine two.\r\n", title="Notes"), igs_env)
    b = accept(_event("transcript.process", text="Line one.\nLine two.", title="Notes"), igs_env)
    c = accept(_event("transcript.process", text="Another text.", title="Notes"), igs_env)
    assert a.key == b.key != c.key and b.known and not c.known
    stored = igs_env.data_dir / "inbox" / f"{a.key}.txt"
    assert stored.read_bytes() == b"Line one.\r\nLine two."  # the first text wins, stripped
    rows = sqlite3.connect(igs_env.queue_db).execute("SELECT data FROM events").fetchall()
    assert all("Line one" not in row[0] for row in rows)


@pytest.mark.parametrize("data, reason", [
    ({"file": "relative/clip.mp4", "title": "T"}, "absolute path"),
    ({"text": " \n\t ", "title": "T"}, "empty"),
    # '..' is resolved before the media folders are compared: climbing out gets the one refusal
    ({"file": "/tmp/../etc/clip.mp4", "title": "T"}, "not a media file under the media folders"),
    ({"file": "https://example.com/v.mp4", "title": "T"}, "absolute path"),
])
def test_transcript_refusals_write_nothing(igs_env, data, reason):
    with pytest.raises(PermanentError, match=reason):
        accept(_event("transcript.process", **data), igs_env)
    assert not igs_env.data_dir.exists()


def test_dotdot_that_stays_inside_a_media_folder_is_the_same_file(igs_env, tmp_path):
    """`igs transcript --file ../talk.mp4` from a subfolder: resolved, then fenced (issue 23)."""
    (tmp_path / "sub").mkdir()
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(SAMPLE_MP4.read_bytes())
    plain = accept(_event("transcript.process", file=str(clip), title="T"), igs_env)
    climbed = accept(_event("transcript.process", file=f"{tmp_path}/sub/../clip.mp4", title="T"),
                     igs_env)
    assert climbed.key == plain.key and climbed.known


def test_transcript_file_source_keeps_label_and_title(igs_env, tmp_path):
    clip = tmp_path / "Episode 7.mp4"
    clip.write_bytes(SAMPLE_MP4.read_bytes())
    result = accept(_event("transcript.process", file=str(clip), title="Seven", source="podcast"), igs_env)
    source = EventQueue(igs_env.queue_db).get_source(result.key)
    assert (source.kind, source.location, source.label, source.title) == ("file", str(clip), "podcast", "Seven")


def test_summarize_needs_a_partition_this_deployment_knows(igs_env):
    vault = igs_env.vault_dir
    web = accept(_event("video.download", url="https://example.com/talk.mp4"), igs_env).key
    assert note_video_id(_note(vault, "web.md", web), igs_env) == web
    # a bare YouTube ID is always a valid partition (it can be added by hand in the UI)
    assert note_video_id(_note(vault, "yt.md", "abcdefghijk"), igs_env) == "abcdefghijk"
    with pytest.raises(PermanentError, match="never sent"):
        note_video_id(_note(vault, "other.md", "web-other-0123456789"), igs_env)
    with pytest.raises(PermanentError, match="invalid video_id"):
        note_video_id(_note(vault, "bad.md", "a b"), igs_env)
    (vault / "Resources" / "videos" / "latin1.md").write_bytes(b"---\nvideo_id: \xe9\n---\n")
    with pytest.raises(PermanentError, match="not UTF-8"):
        note_video_id(vault / "Resources" / "videos" / "latin1.md", igs_env)


def test_summarize_refusal_does_not_create_the_queue(igs_env):
    note = _note(igs_env.vault_dir, "n.md", "web-unknown-0123456789")
    with pytest.raises(PermanentError):
        accept(_event("content.summarize", note=str(note)), igs_env)
    assert not igs_env.queue_db.exists()


def test_system_log_event_is_written_not_queued(igs_env):
    result = accept(_event("system.log", action="a.b", tool="t", detail="d"), igs_env)
    assert result.event_id is None and result.message == "logged"
    assert igs_env.system_log.read_text().count("\n") == 1
    assert not igs_env.queue_db.exists()
