"""Search, related notes, subtitles, screenshots and the plain checks, with real parts: SQLite
FTS5, the bundled MiniLM model run by numpy, the bundled ffmpeg on the sample clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.search_eval import talk_segments
from igs_dagster.video import checks, noteblocks, screenshots, subtitles
from igs_dagster.video.search import related
from igs_dagster.video.search.index import NoteDoc, SearchIndex
from igs_dagster.video.search.indexer import index_note
from igs_dagster.video.search.query import highlight, search
from igs_dagster_tests.media import SAMPLE_MP4

# faster-whisper tiny.en on the sample (facts-measured.md): two segments
JFK = [
    {"start": 0.0, "end": 8.0,
     "text": "And so, my fellow Americans ask not what your country can do for you"},
    {"start": 8.0, "end": 11.0, "text": "ask what you can do for your country."},
]
BEES_2 = [  # a second talk on bees, other words
    {"start": 0.0, "end": 6.0, "text": "Honeybees share where the nectar is by dancing."},
    {"start": 6.0, "end": 12.0, "text": "The hive depends on foragers visiting flowers all summer."},
    {"start": 12.0, "end": 18.0, "text": "Varroa mites and pesticides are killing whole colonies."},
]


@pytest.fixture(scope="module")
def enc():
    from igs_dagster.video.search.embed import encoder

    return encoder()


def _add(index, vault: Path, key: str, title: str, segments, enc, url=None):
    path = vault / f"{key}.md"
    path.write_text(f"---\nvideo_id: {key}\n---\n\n## Executive Summary\n\nx\n\n"
                    "<!-- igs:transcript -->\n## Transcript\n")
    doc = NoteDoc(video_id=key, slug=key, title=title, note_path=str(path), source_url=url,
                  channel="Chan " + key, day="2026-01-0" + str(len(key) % 9 + 1))
    return index_note(index, doc, segments, enc)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, enc):
    vault = tmp_path_factory.mktemp("vault")
    index = SearchIndex(vault / "search.sqlite3")
    _add(index, vault, "jfk", "JFK inaugural", JFK, enc, url="https://www.youtube.com/watch?v=abcdefghijk")
    for seed, topic in enumerate(("bees", "rust", "coffee", "mars")):
        _add(index, vault, topic, topic.title(), talk_segments(topic, seed), enc)
    _add(index, vault, "bees2", "More bees", BEES_2, enc)
    yield index, vault
    index.close()


def test_encoder_matches_sentence_transformers_reference(enc):
    v = enc.encode(["A man is eating food.", "A man is eating a piece of bread.",
                    "The girl is carrying a baby."])
    assert abs(float(v[0] @ v[1]) - 0.755) < 0.01  # sentence-transformers gives 0.7553
    assert float(v[0] @ v[2]) < 0.1
    assert abs(float(v[0][4]) - (-0.1387)) < 0.002


@pytest.mark.parametrize("mode", ["hybrid", "text", "semantic"])
def test_jfk_found_at_the_right_second(corpus, enc, mode):
    index, _ = corpus
    hits = search(index, "what you can do for your country", mode=mode, encoder=enc)
    assert hits[0].video_id == "jfk"
    if mode != "semantic":
        assert hits[0].start == 8.0  # "ask what you can do for your country." starts at 8 s


def test_paraphrase_needs_semantic(corpus, enc):
    index, _ = corpus
    query = "how does the robot vehicle get down to the ground"  # no topic word of the talk
    assert search(index, query, mode="semantic", encoder=enc)[0].video_id == "mars"


def test_filters_and_highlight(corpus, enc):
    index, _ = corpus
    hits = search(index, "country", channel="chan jfk", encoder=enc)
    assert {h.video_id for h in hits} == {"jfk"}
    assert search(index, "country", channel="nobody", encoder=enc) == []
    assert "==country==" in highlight(hits[0].text, "your country")
    with pytest.raises(Exception, match="YYYY-MM-DD"):
        search(index, "x", since="yesterday", encoder=enc)
    # FTS5 syntax in a query is just words
    assert isinstance(search(index, 'country" OR NEAR(', mode="text"), list)


def test_reindex_unchanged_is_a_noop_and_deleted_note_leaves(tmp_path, enc):
    index = SearchIndex(tmp_path / "s.sqlite3")
    first = _add(index, tmp_path, "jfk", "JFK", JFK, enc)
    again = _add(index, tmp_path, "jfk", "JFK", JFK, enc)
    assert first.changed and not again.changed
    assert search(index, "country", mode="text")
    (tmp_path / "jfk.md").unlink()
    # the vault's marker is not there (moved away, unmounted): a missing file is not a deletion
    assert index.prune_missing(tmp_path) == [] and search(index, "country", mode="text")
    (tmp_path / ".igs-vault").touch()  # the vault is there: the note was deleted
    assert index.prune_missing(tmp_path) == ["jfk"]
    assert search(index, "country", mode="text") == []
    assert index.stats()["passages"] == 0


class _Counting:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, enc):
        self.enc, self.texts = enc, []

    def encode(self, texts):
        self.texts += texts
        return self.enc.encode(texts)


def test_reindex_encodes_only_changed_passages(tmp_path, enc):
    index = SearchIndex(tmp_path / "s.sqlite3")
    segments = talk_segments("bees", 0)
    first = _Counting(enc)
    _add(index, tmp_path, "bees", "Bees", segments, first)
    before = index.note_vectors("bees")
    edited = [*segments[:-1], {**segments[-1], "text": "Saffron is the costliest spice there is."}]
    again = _Counting(enc)
    result = _add(index, tmp_path, "bees", "Bees, retitled", edited, again)
    after = index.note_vectors("bees")
    assert result.changed and len(before) == len(after) >= 3
    assert len(again.texts) == 1 and "Saffron" in again.texts[0]  # the only new passage
    assert (after[:-1] == before[:-1]).all() and not (after[-1] == before[-1]).all()
    assert search(index, "saffron spice", mode="semantic", encoder=enc)[0].video_id == "bees"


def test_vectors_file_is_shared_between_processes_and_follows_changes(tmp_path, enc):
    path = tmp_path / "s.sqlite3"
    with SearchIndex(path) as index:
        _add(index, tmp_path, "jfk", "JFK", JFK, enc)
        pid, mat, owners = index.matrix()
    files = list(tmp_path.glob("s.sqlite3-vectors-*.npy"))
    assert len(files) == 1 and owners == ["jfk"] * len(pid)
    with SearchIndex(path) as fresh:  # as a new `igs search` process: mapped from the file
        pid2, mat2, _ = fresh.matrix()
        assert (pid2 == pid).all() and (mat2 == mat).all()
        assert isinstance(mat2, np.memmap)
        _add(fresh, tmp_path, "bees", "Bees", BEES_2, enc)
        _, mat3, owners3 = fresh.matrix()
        assert set(owners3) == {"jfk", "bees"}
        assert len(mat3) == len(mat) + len(fresh.passages_of("bees"))
    now = list(tmp_path.glob("s.sqlite3-vectors-*.npy"))
    assert len(now) == 1 and now != files  # a new key; the stale file is gone
    with SearchIndex(path) as again:
        assert search(again, "honeybees dancing", mode="semantic", encoder=enc)[0].video_id == "bees"


def test_related_between_related_talks_only(corpus):
    index, vault = corpus
    found = related.related_notes(index, "bees2")
    assert [r.note.video_id for r in found] == ["bees"]
    assert related.related_notes(index, "rust") == []  # nothing about Rust elsewhere: no noise
    block = related.render_block(found)
    assert "## Related in the vault" in block and "- [[bees]] Bees (" in block
    context = related.prompt_context(found)
    assert "[[bees]]" in context and "similarity" in context


def test_blocks_leave_the_rest_of_the_note_alone(tmp_path):
    note = tmp_path / "n.md"
    text = ("---\nvideo_id: x\n---\n\n## Executive Summary\n\nsummary\n\n"
            "<!-- igs:transcript -->\n## Transcript\n> words\n")
    note.write_text(text)
    assert noteblocks.update_note_block(note, "related", "## Related in the vault\n\n- [[a]]\n")
    assert noteblocks.update_note_block(note, "screenshots", "## Screenshots\n\n- shot\n")
    assert not noteblocks.update_note_block(note, "related", "## Related in the vault\n\n- [[a]]\n")
    new = note.read_text()
    assert new.index("igs:screenshots") < new.index("igs:related") < new.index("igs:transcript")
    assert new.startswith(text.split("<!-- igs:transcript")[0])
    assert new.endswith("<!-- igs:transcript -->\n## Transcript\n> words\n")
    noteblocks.update_note_block(note, "related", None)
    noteblocks.update_note_block(note, "screenshots", None)
    assert note.read_text().replace("\n\n\n", "\n\n") == text


def test_subtitles_split_long_segments_within_limits(tmp_path):
    long = {"start": 11.0, "end": 41.0, "text": " ".join(
        ["This sentence is here to make the segment long enough."] * 6)}
    srt = subtitles.to_srt([*JFK, long])
    blocks = srt.strip().split("\n\n")
    assert len(blocks) > 3
    for block in blocks:
        lines = block.split("\n")
        assert len(lines[2:]) <= 2 and all(len(line) <= 42 for line in lines[2:])
    assert "00:00:08,000 --> 00:00:11,000\nask what you can do for your country." in srt
    vtt = subtitles.to_vtt(JFK)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")
    media = tmp_path / "video.mp4"
    media.write_bytes(b"x")
    paths = subtitles.write_subtitles(media, JFK, "en")
    assert [p.name for p in paths] == ["video.en.srt", "video.en.vtt"]


def test_screenshots_on_the_sample_are_idempotent(tmp_path):
    assert screenshots.has_video(SAMPLE_MP4)
    first = screenshots.take_screenshots(SAMPLE_MP4, tmp_path, "jfk", 11.0, [(8, "Ask what")])
    assert len(first) == 1 and first[0].seconds == 8 and first[0].path.stat().st_size < 60_000
    stray = first[0].path.parent / "jfk-00999.jpg"
    stray.write_bytes(b"old")
    again = screenshots.take_screenshots(SAMPLE_MP4, tmp_path, "jfk", 11.0, [(8, "Ask what")])
    assert [s.path for s in again] == [s.path for s in first]
    assert sorted(p.name for p in first[0].path.parent.iterdir()) == ["jfk-00008.jpg"]
    block = screenshots.render_block(again, tmp_path, lambda s: f"https://x/#t={s}")
    assert "![[Resources/videos/attachments/jfk/jfk-00008.jpg|480]]" in block
    assert "**[0:08](https://x/#t=8)** Ask what" in block


def test_screenshot_plan_spacing():
    plan = screenshots.plan_times(600, [(10, "a"), (60, "b"), (200, "c")], [100.0, 400.0, 590.0])
    assert [t for t, _ in plan] == [10, 200, 400, 590]  # >= 120 s apart, at most 5 for 10 minutes
    assert len(screenshots.plan_times(3600, [], [float(t) for t in range(0, 3600, 30)])) == 30


def test_transcript_check_flags_loops_and_phantoms():
    ok = checks.check_transcript({"text": JFK[0]["text"] + " " + JFK[1]["text"],
                                  "segments": JFK}, 11.0)
    assert ok.passed, ok.reason
    loop = [{"start": float(i), "end": i + 1.0, "text": "yeah yeah yeah"} for i in range(50)]
    bad = checks.check_transcript({"text": " ".join(s["text"] for s in loop), "segments": loop}, 60)
    assert not bad.passed and "'yeah' repeated 150 times" in bad.reason
    past = [*JFK, {"start": 40.0, "end": 44.0, "text": "Thank you for watching."}]
    assert "after the media ends" in checks.check_transcript(
        {"text": "x", "segments": past}, 11.0).reason


def test_search_cli_json(enc, tmp_path, monkeypatch, capsys):
    from igs_dagster.cli.app import main

    data = tmp_path / "data"
    data.mkdir()
    with SearchIndex(data / "search.sqlite3") as index:
        _add(index, tmp_path, "jfk", "JFK", JFK, enc, url="https://www.youtube.com/watch?v=abcdefghijk")
    monkeypatch.setenv("IGS_DATA_DIR", str(data))
    assert main(["search", "what you can do for your country", "-n", "2", "--json",
                 "--mode", "text"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["wikilink"] == "[[jfk]]" and out[0]["start"] == 8.0
    assert out[0]["url"] == "https://www.youtube.com/watch?v=abcdefghijk&t=8s"
    assert main(["search", "country", "-n", "0"]) == 2
    assert "-n wants" in capsys.readouterr().err
