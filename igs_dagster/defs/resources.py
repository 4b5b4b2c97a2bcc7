"""The project's settings as Dagster resources: typed config the launchpad shows and a run can
change, shared by every pipeline.

Each resource holds one group of the settings (IGS_* environment variables and the config file,
core/settings.py): `igs` the data folder and download caps, `vault` the vault, `agent` the agent
CLI that enriches notes and runs the loop's roles; the video pipeline adds `whisper` and
`archive` (defs/video/resources.py). Their fields are built from the settings model, named and
described after the variable that sets them, and their defaults are the settings this process
read when it loaded the code location: a run worker loads it when its run starts, so a run sees
the settings as they are then (`igs settings` shows them); the launchpad shows what the code
server read at its start. A value given in a run's config (the launchpad, `dagster job launch
--config`) is used for that run.

`IgsSettings.get(*resources)` is the one Settings value a step or a sensor tick works with: the
settings read once for that resource object (once per run; once per sensor tick, because the
config file may change under a running service), with the values each given resource's run
config changed applied on top, validated like the settings. Plain code below defs/ receives this
value or parts of it, never a loader.

Invalid settings never stop the code location from loading: the resources fall back to the
model's defaults, each step then fails with the one-line SettingsError, and each sensor tick
skips with it (`invalid_settings_skip`).
"""

from __future__ import annotations

import functools
import typing
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, create_model

from igs_dagster.core.errors import SettingsError
from igs_dagster.core.inbox import EventQueue
from igs_dagster.core.settings import Settings, load_settings
from igs_dagster.core.settings_sources import SENSOR_SETTINGS_INVALID


@functools.cache
def startup_settings() -> Settings | None:
    """The settings when this process loaded the code location (None: invalid then)."""
    try:
        return load_settings()
    except SettingsError:
        return None


class SettingsGroup(dg.ConfigurableResource):
    """A group of the settings as resource config (built by `settings_resource`)."""

    GROUP: ClassVar[str | None] = None  # the Settings field holding the group; None: top level

    def overrides(self) -> dict[str, Any]:
        """The values a run's config changed: those unlike the settings this process started
        with (the fields' defaults)."""
        return {name: getattr(self, name) for name, field in type(self).model_fields.items()
                if getattr(self, name) != field.default}


def _config_type(annotation: Any) -> Any:
    """The settings' type as Dagster config can hold it: paths as text."""
    if annotation is Path:
        return str
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, type(str | None)) and args:
        return typing.Optional[tuple(_config_type(a) for a in args if a is not type(None))[0]]  # noqa: UP045
    if typing.get_origin(annotation) is list:
        return list[_config_type(args[0])]
    return annotation


def _config_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_config_value(v) for v in value]
    return value


def settings_resource(name: str, doc: str, group: str | None, fields: tuple[str, ...],
                      base: type[SettingsGroup] = SettingsGroup) -> type[SettingsGroup]:
    """A resource class with `fields` of the settings `group` as config: each field typed as
    in the settings, described by its variable, its default the value read at start-up."""
    model: type[BaseModel] = Settings.model_fields[group].annotation if group else Settings
    now = startup_settings()
    source = (getattr(now, group) if group else now) if now is not None else None
    config = {}
    for field_name in fields:
        field = model.model_fields[field_name]
        default = getattr(source, field_name) if source is not None else field.get_default(
            call_default_factory=True)
        variable = "IGS_" + (f"{group}__{field_name}" if group else field_name).upper()
        described = f"{variable}" + (f": {field.description}" if field.description else "")
        config[field_name] = (_config_type(field.annotation),
                              Field(_config_value(default), description=described))
    resource = create_model(name, __base__=base, __doc__=doc, __module__=base.__module__, **config)
    resource.GROUP = group
    return resource


class _Igs(SettingsGroup):
    _loaded: Settings | None = PrivateAttr(default=None)

    def get(self, *resources: SettingsGroup) -> Settings:
        """The settings this step works with: read once for this resource, with the values the
        run's config changed in this resource and in `resources` applied."""
        if self._loaded is None:
            self._loaded = load_settings()  # SettingsError: one line, for the step or the tick
        changes = [(r.GROUP, values) for r in (self, *resources) if (values := r.overrides())]
        if not changes:
            return self._loaded
        data = self._loaded.model_dump()
        for group, values in changes:
            (data[group] if group else data).update(values)
        try:
            return Settings.model_validate(data)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise SettingsError(f"invalid value in the run's resource config: {problems}") from None

    def queue(self) -> EventQueue:
        return EventQueue(self.get().queue_db)


IgsSettings = settings_resource(
    "IgsSettings",
    "The project settings (IGS_* variables, the config file): the data folder, where the inbox, "
    "media, transcripts and Dagster's home live, and the download caps.",
    None, ("data_dir", "max_height", "max_download_mb"), base=_Igs)

Vault = settings_resource(
    "Vault", "The Obsidian vault the notes, daily links, loop summaries and the system log go to.",
    None, ("vault_dir",))

AgentRunner = settings_resource(
    "AgentRunner",
    "The agent CLI that enriches notes (`none`: the built-in enricher) and its limits; the "
    "coding loop's roles run under the same timeout.",
    "agent", ("tool", "timeout_s", "research", "style_file"))


def invalid_settings_skip(igs: SettingsGroup | None = None) -> str | None:
    """A sensor's skip reason while the settings are invalid (e.g. a config file broken while
    the service runs), else None: one line per tick in the UI's tick history, the daemon's log,
    `igs status` and `igs send --wait`, instead of a traceback; the sensor keeps its cursor, so
    the first good tick does the work. Reads the settings for `igs` (kept for the tick)."""
    try:
        (igs or IgsSettings()).get()
    except SettingsError as err:
        return f"{SENSOR_SETTINGS_INVALID}: {err}"
    return None


defs = dg.Definitions(resources={"igs": IgsSettings(), "vault": Vault(), "agent": AgentRunner()})
