"""What each video asset hands on to the assets after it: a small JSON file per asset beside the
partition's media, `<data>/media/<key>/assets/<asset>.json` (the paths of the files it made and a
few facts about them: the claim check).

The assets name their upstream assets in `deps=` and read these files, and report what they did
with `MaterializeResult`, rather than passing Python values through an IO manager: nothing is
pickled into Dagster's storage, a run writes no output/input events (bench figure 4), and the
hand-over is a file anyone can read. Materializing one asset alone (the UI, `dagster asset
materialize --select vault_note`) reads what the last materialization of the assets before it
left. Videos ingested before these files existed still have their values where the old IO
manager kept them (`DAGSTER_HOME/storage/<asset>/<key>`, pickles we wrote), read once as a
fallback.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.fsutil import atomic_write_text, private_dir
from igs_dagster.core.settings import Settings
from igs_dagster.defs.resources import IgsSettings, SettingsGroup

FOLDER = "assets"


@dataclass(frozen=True)
class Claims:
    folder: Path  # <data>/media/<key>/assets
    key: str
    legacy: Path | None = None  # DAGSTER_HOME/storage of the old IO manager

    def save(self, asset: str, value: dict) -> dict:
        private_dir(self.folder)
        atomic_write_text(self.folder / f"{asset}.json", json.dumps(value, ensure_ascii=False))
        return value

    def load(self, asset: str) -> dict:
        path = self.folder / f"{asset}.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        old = self.legacy / asset / self.key if self.legacy is not None else None
        if old is not None and old.is_file():
            with open(old, "rb") as handle:
                return pickle.load(handle)  # noqa: S301 - written by our own IO manager, 0700 home
        raise PermanentError(f"{asset} has not been materialized for {self.key} yet: "
                             "materialize it (or the whole video) first")

    def load_each(self, *assets: str) -> list[dict]:
        return [self.load(asset) for asset in assets]


def claims(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
           media_dir: Path) -> Claims:
    """The hand-over files of this step's partition."""
    key = context.partition_key
    storage = context.instance.storage_directory() if context.instance else None
    return Claims(Path(media_dir) / key / FOLDER, key, Path(storage) if storage else None)


def handed(media_dir: Path, key: str, asset: str) -> dict:
    """What `asset` handed on for partition `key`, read outside a step (the CLI, tests, bench)."""
    return Claims(Path(media_dir) / key / FOLDER, key).load(asset)


def step_claims(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
                igs: IgsSettings, *resources: SettingsGroup) -> tuple[Settings, Claims]:
    """A video step's start: its settings (with the resources it was handed) and its claims."""
    settings = igs.get(*resources)
    return settings, claims(context, settings.media_dir)
