"""Chapters (issue 22): when yt-dlp reports chapters, the note lists them as linked timestamps
above the transcript. End to end with yt-dlp's generic extractor on a loopback page whose
JSON-LD VideoObject has Clip parts (yt-dlp turns them into `chapters`), and from an info JSON."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from igs_dagster.core.events import VideoDownload, VideoDownloadData
from igs_dagster.video import notes
from igs_dagster.video.enrich.verify import transcript_text
from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import handed
from igs_dagster_tests.gateserver import GateServer


def _page(media_url: str) -> str:
    ld = {"@context": "https://schema.org", "@type": "VideoObject", "name": "A talk in parts",
          "contentUrl": media_url, "encodingFormat": "video/mp4", "uploadDate": "2026-11-02",
          "hasPart": [{"@type": "Clip", "name": "Opening", "startOffset": 0, "endOffset": 4},
                      {"@type": "Clip", "name": "The [ask]", "startOffset": 4, "endOffset": 11}]}
    return (f"<html><head><title>Talk</title><script type='application/ld+json'>{json.dumps(ld)}"
            "</script></head><body>a talk</body></html>")


def test_chapters_yt_dlp_reports_are_listed_above_the_transcript(tmp_path, igs_env):
    from igs_dagster.definitions import defs
    from igs_dagster.intake import accept

    with GateServer(tmp_path / "served") as server:
        url = server.write("talk-in-parts.html", _page(server.add(SAMPLE_MP4, "parts.mp4")))
        key = accept(VideoDownload(name="video.download", data=VideoDownloadData(url=url)),
                     igs_env).key
        steps = [dg.AssetKey(n) for n in ("video_download", "video_archive", "transcript",
                                          "vault_note")]
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("videos", [key])
            result = defs.resolve_job_def("video_ingest").execute_in_process(
                instance=instance, partition_key=key, asset_selection=steps)
    assert result.success
    assert [c["title"] for c in handed(igs_env, key, "video_download")["chapters"]] == [
        "Opening", "The [ask]"]
    text = Path(handed(igs_env, key, "vault_note")["note_path"]).read_text()
    block = notes.transcript_block(text)
    source = handed(igs_env, key, "video_download")["source_url"]
    assert block.index("## Chapters") < block.index("## Transcript")
    assert f"- [0:00]({source}#t=0) Opening\n- [0:04]({source}#t=4) The \\[ask\\]\n" in block
    assert "Opening" not in transcript_text(text)  # chapter titles are not spoken words


def test_chapters_from_an_info_json(tmp_path):
    info = {"id": "abcdefghijk", "title": "Three parts", "chapters": [
        {"start_time": 754.0, "end_time": 900.0, "title": "Questions"},
        {"start_time": 0.0, "end_time": 300.0, "title": "Intro"},
        {"start_time": 300.0, "end_time": 754.0, "title": "Main <b>point</b>"},
        {"start_time": "bad", "title": "ignored"},
    ]}
    inp = notes.NoteInput(
        video_id=info["id"], title=info["title"], source_label="youtube",
        source_url=f"https://www.youtube.com/watch?v={info['id']}", channel=None, published=None,
        duration=900, archive_path=None, transcribed="2026-12-06", tags=["video"],
        timestamp_url=lambda s: f"https://www.youtube.com/watch?v={info['id']}&t={s}s",
        chapters=info["chapters"])
    transcript = {"segments": [{"start": 1.0, "end": 5.0, "text": "Hello."}]}
    text = notes.render_note(inp, transcript)
    watch = f"https://www.youtube.com/watch?v={info['id']}"
    # the title as inert(title, "item") writes it: a tag's angle brackets escaped
    assert (f"## Chapters\n\n- [0:00]({watch}&t=0s) Intro\n"
            f"- [5:00]({watch}&t=300s) Main \\<b\\>point\\</b\\>\n"
            f"- [12:34]({watch}&t=754s) Questions\n\n## Transcript") in text
    assert notes.render_note(inp, transcript, existing=text) == text  # re-rendering is stable
    without = notes.render_note(notes.NoteInput(**{**inp.__dict__, "chapters": []}), transcript)
    assert "## Chapters" not in without
