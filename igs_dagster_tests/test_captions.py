"""Creator captions as the transcript (issue 22): yt-dlp's generic extractor on a loopback page
whose `<video>` has a `<track kind="subtitles">` WebVTT. With IGS_TRANSCRIBER__SOURCE=auto the
note's transcript is the track's text at the track's times (`transcript_source: captions`, no
Whisper); with the default (whisper) the track is not even fetched. Automatic captions are
used only with `captions`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.events import VideoDownload, VideoDownloadData
from igs_dagster.video import captions, whisper_backends
from igs_dagster.video.download import download_video
from igs_dagster.video.frontmatter import split_frontmatter
from igs_dagster.video.transcript import load_transcript
from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import handed
from igs_dagster_tests.gateserver import GateServer

VTT = """WEBVTT

NOTE written by the creator, not the speech

00:00:00.500 --> 00:00:04.000
Captions written by <b>the creator</b>.

00:00:04.000 --> 00:00:08.250
Every word here comes from the track.

00:02:05.000 --> 00:02:09.000
A later part &amp; its words.
"""
PAGE = """<html><head><title>Creator talk</title></head><body>
<video controls src="talk.mp4"><track kind="subtitles" srclang="en" label="English"
 src="talk.en.vtt"></video></body></html>"""


@pytest.fixture
def page(tmp_path: Path):
    with GateServer(tmp_path / "served") as server:
        server.add(SAMPLE_MP4, "talk.mp4")
        server.write("talk.en.vtt", VTT)
        yield server, server.write("creator-talk.html", PAGE)


def test_whisper_default_does_not_fetch_captions(page, tmp_path):
    server, url = page
    result = download_video(url, tmp_path / "dl")
    assert result.captions_path is None and not server.requests("talk.en.vtt")


def test_creator_captions_become_the_note(page, igs_env, monkeypatch):
    from igs_dagster.core.settings import load_settings
    from igs_dagster.definitions import defs
    from igs_dagster.intake import accept

    server, url = page
    monkeypatch.setenv("IGS_TRANSCRIBER__SOURCE", "auto")
    settings = load_settings()
    key = accept(VideoDownload(name="video.download", data=VideoDownloadData(url=url)), settings).key
    loads = whisper_backends.model_loads()
    steps = [dg.AssetKey(n) for n in ("video_download", "video_archive", "transcript", "vault_note")]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", [key])
        result = defs.resolve_job_def("video_ingest").execute_in_process(
            instance=instance, partition_key=key, asset_selection=steps)
    assert result.success
    info = handed(settings, key, "transcript")
    assert info["backend"] == "captions" and info["model"] == "creator"
    assert whisper_backends.model_loads() == loads  # Whisper never loaded
    data = load_transcript(Path(info["path"]))
    assert [(s["start"], s["end"], s["text"]) for s in data["segments"]] == [
        (0.5, 4.0, "Captions written by the creator."),
        (4.0, 8.25, "Every word here comes from the track."),
        (125.0, 129.0, "A later part & its words."),
    ]
    note = Path(handed(settings, key, "vault_note")["note_path"]).read_text()
    meta, body = split_frontmatter(note)
    assert meta["transcript_source"] == "captions" and meta["language"] == "en"
    transcript = body.split("## Transcript", 1)[1]
    assert "> [!note]- Transcript (0:11)" in transcript  # the media's length, not the track's
    assert (f"**[0:00]({url}#t=0)** Captions written by the creator. Every word here comes "
            "from the track.") in transcript
    assert f"**[2:05]({url}#t=125)** A later part \\& its words." in transcript  # the track's time; inert: shown as &
    assert "fellow Americans" not in note  # the speech was not transcribed


def test_choice_of_track():
    info = {"language": "en",
            "subtitles": {"de": [{"url": "d"}], "en-GB": [{"url": "e"}], "live_chat": [{}]},
            "automatic_captions": {"en-orig": [{"url": "a"}], "en": [{"url": "t"}]}}
    assert captions.choose(info, "auto") == captions.CaptionChoice("en-GB", "creator")
    assert captions.choose(info, "whisper") is None
    no_creator = {**info, "subtitles": {"de": [{"url": "d"}]}}
    assert captions.choose(no_creator, "auto") is None  # automatic captions: never with auto
    assert captions.choose(no_creator, "captions") == captions.CaptionChoice("en-orig", "automatic")
    unknown = {"subtitles": {"fr": [{"url": "f"}], "es": [{"url": "s"}]}}
    assert captions.choose(unknown, "auto") is None  # which one is spoken? Whisper decides
    assert captions.choose(unknown, "auto", language="es").language == "es"


def test_rolling_automatic_captions_are_not_repeated():
    rolling = ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nask not\n\n"
               "00:00:02.000 --> 00:00:03.000\nask not what your country\n\n"
               "00:00:03.000 --> 00:00:03.500\nwhat your country\n")
    assert [s["text"] for s in captions.parse_cues(rolling)] == ["ask not", "what your country"]
    srt = "1\n00:00:01,000 --> 00:00:02,500\nSubRip works too\n"
    assert captions.parse_cues(srt) == [{"start": 1.0, "end": 2.5, "text": "SubRip works too"}]
