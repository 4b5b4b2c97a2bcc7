"""Shared test fixtures: real media, a loopback HTTP server, isolated settings folders."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from igs_dagster.core.local_http import FolderServer
from igs_dagster_tests.media import (  # noqa: F401 - re-exported
    JFK_TEXT,
    KILL_CLIP_REPEAT,
    LOOPBACK,
    MEDIA_ROOTS,
    SAMPLE_MP4,
    repeat_clip,
)

FIXTURES = Path(__file__).parent / "fixtures"
MEDIA = FIXTURES / "media"

# Never let a test read the developer's own config or write into their home folders.
os.environ.pop("IGS_CONFIG", None)
for _name in list(os.environ):
    if _name.startswith("IGS_"):
        del os.environ[_name]


def on_ci() -> bool:
    """CI sets CI=true: there every server the suite needs is installed (scripts/test)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose server can't run here, but fail it on CI: a CI run that silently
    skipped a whole mode would pass without testing it."""
    if on_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _session_igs_folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    base = tmp_path_factory.mktemp("igs-session")
    os.environ["IGS_DATA_DIR"] = str(base / "data")
    os.environ["IGS_VAULT_DIR"] = str(base / "vault")
    # test projects and PRDs live in temp folders: make them the loop roots (issue 10)
    os.environ["IGS_LOOP__ROOTS"] = json.dumps([tempfile.gettempdir()])
    # issue 23: local media only from the media folders (the temp folder, the fixtures)...
    os.environ["IGS_MEDIA_ROOTS"] = json.dumps(MEDIA_ROOTS)
    # ... and downloads may reach loopback (every test serves its media on 127.0.0.1)
    os.environ["IGS_NETWORK__ALLOW"] = json.dumps(LOOPBACK)
    yield


@pytest.fixture
def igs_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point IGS_DATA_DIR and IGS_VAULT_DIR at fresh folders; return the loaded Settings."""
    from igs_dagster.core.settings import load_settings

    monkeypatch.setenv("IGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
    monkeypatch.setenv("IGS_MEDIA_ROOTS", json.dumps(MEDIA_ROOTS))  # as the session (issue 23)
    monkeypatch.setenv("IGS_NETWORK__ALLOW", json.dumps(LOOPBACK))
    # setenv first records the original state, so the teardown also undoes a DAGSTER_HOME that
    # the code under test exported (defs/instance.prepare_dagster_home does, in-process)
    monkeypatch.setenv("DAGSTER_HOME", "")
    monkeypatch.delenv("DAGSTER_HOME")
    return load_settings()


@pytest.fixture
def jfk_note(tmp_path: Path) -> Path:
    """A rendered, not yet enriched vault note of the JFK clip in a fresh vault under tmp_path."""
    folder = tmp_path / "vault" / "Resources" / "videos"
    folder.mkdir(parents=True)
    return Path(shutil.copyfile(FIXTURES / "enrich" / "jfk_note.md",
                                folder / "jfk-inaugural-address-excerpt.md"))


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A deployment (DagsterEnv) with its daemon running, one per test module. A module that
    needs other settings or more set-up defines its own `deployment`, which overrides this."""
    from igs_dagster_tests.dagster_env import DagsterEnv

    env = DagsterEnv.create(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    env.start_daemon()
    yield env
    env.stop_daemon()


def pid_gone(pid: int) -> bool:
    """No process `pid` on this machine, or only its zombie (as the process table says)."""
    from igs_dagster.core.process_groups import process_info

    info = process_info(pid)
    return info is None or info.exited


@pytest.fixture(scope="session")
def jfk_wav() -> Path:
    return MEDIA / "jfk.wav"


@pytest.fixture(scope="session")
def jfk_mp3() -> Path:
    return MEDIA / "jfk.mp3"


@pytest.fixture(scope="session")
def sample_mp4() -> Path:
    """11 s test-pattern video with the JFK speech as its AAC audio track."""
    return SAMPLE_MP4


@pytest.fixture(scope="session")
def long_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~66 s of real speech (the sample six times): long enough to observe a step in flight."""
    return repeat_clip(SAMPLE_MP4, 6, tmp_path_factory.mktemp("long") / "long-talk.mp4")


@pytest.fixture(scope="session")
def kill_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~220 s of speech, long enough to kill a worker mid-transcription (media.KILL_CLIP_REPEAT)."""
    return repeat_clip(SAMPLE_MP4, KILL_CLIP_REPEAT, tmp_path_factory.mktemp("kill") / "kill-talk.mp4")


MediaServer = FolderServer  # the fixture's type, for annotations


@pytest.fixture(scope="session")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    """A real HTTP server on 127.0.0.1 serving a folder (the sample mp4 and an HTML page)."""
    root = tmp_path_factory.mktemp("served")
    shutil.copyfile(SAMPLE_MP4, root / "jfk-inaugural.mp4")
    (root / "page.html").write_text("<html><body><p>No media here.</p></body></html>")
    with FolderServer(root) as server:
        yield server


@pytest.fixture(scope="session")
def spanish_mp3() -> Path:
    """10.5 s of Spanish (espeak-ng -v es): "El mercado del pueblo abre muy temprano. ..."."""
    return MEDIA / "es.mp3"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the multilingual `base` model joined once for the whole session
    (the `multilingual` extra is in the dev group)."""
    from igs_dagster.video import whisper_models

    folder = tmp_path_factory.mktemp("models")
    whisper_models.join(whisper_models.BASE, folder)
    return folder
