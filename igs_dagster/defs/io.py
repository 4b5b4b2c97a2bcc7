"""Where asset values (small dicts of paths) are kept between steps: Dagster's own layout and
format (a pickle per asset and partition under `DAGSTER_HOME/storage`), so values stored by the
default IO manager still load, but without its `path` metadata row. That row pointed into
Dagster's internal storage; the assets show the real files (note, transcript, media, archive).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from igs_dagster.core.fsutil import atomic_write_bytes


class StorageIOManager(dg.ConfigurableIOManager):
    """Pickles in `DAGSTER_HOME/storage/<asset key>/<partition>` (op outputs under their run and
    step), no metadata of its own."""

    _base: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._base = context.instance.storage_directory() if context.instance else None

    def _path(self, context) -> Path:
        if self._base is None:  # pragma: no cover - every run has an instance
            raise dg.Failure("no Dagster instance to store outputs in")
        # assets: <asset key>/<partition>; op outputs (the coding loop's role ops) have no asset
        # key: <run id>/<step>/<output>, as Dagster's own filesystem IO manager keeps them
        parts = context.get_asset_identifier() if context.has_asset_key else context.get_identifier()
        return Path(self._base).joinpath(*parts)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def load_input(self, context: dg.InputContext):
        with open(self._path(context), "rb") as handle:
            return pickle.load(handle)  # noqa: S301 - our own values, in our own storage


defs = dg.Definitions(resources={"io_manager": StorageIOManager()})
