"""Issue 23, findings 2 and 4: local media only from the media folders, one refusal outside.

`transcript.process` and `video.download` with a local path (or a hard link to one) used to
copy any readable file with a media extension into the data folder, archive it and transcribe
it into a note; and the API answered differently for paths that exist and paths that don't,
with a 500 and a PermissionError traceback for a path in an unreadable folder. Now
(core/pathguard): none over HTTP until IGS_MEDIA_ROOTS names folders; symlinks resolved, hard
links refused, `file://` URLs under the same rule; every path outside gets the identical line;
and the worker checks again when it copies.

The API runs as its own process. As root it runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH
(setpriv), so a folder with mode 000 is unreadable to it as it would be to any user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from igs_dagster_tests.test_api_hardening import AUTH, Server

pytestmark = pytest.mark.slow
MEDIA = Path(__file__).parent / "fixtures" / "media" / "jfk.mp3"
DROP_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"]


class FenceServer(Server):
    """The hardening tests' API server, started without the root-only file capabilities."""

    def __init__(self, root: Path, extra_env: dict[str, str] | None = None):
        if os.geteuid() == 0 and shutil.which("setpriv"):
            real_popen = subprocess.Popen

            def popen(argv, *args, **kwargs):
                return real_popen([*DROP_DAC, *argv], *args, **kwargs)

            subprocess.Popen = popen
            try:
                super().__init__(root, extra_env)
            finally:
                subprocess.Popen = real_popen
        else:
            super().__init__(root, extra_env)


def _files(o: Path) -> dict[str, str]:
    """Real files of every kind outside the media folders (and one folder inside them)."""
    (o / "secret.mp3").write_bytes(MEDIA.read_bytes())
    (o / "locked").mkdir()
    (o / "locked" / "inside.mp3").write_bytes(MEDIA.read_bytes())
    os.chmod(o / "locked", 0)
    (o / "dir.mp3").mkdir()
    os.mkfifo(o / "fifo.mp3")
    (o / "notes.txt").write_text("not media")
    (o / "empty.mp3").write_bytes(b"")
    (o / "link.mp3").symlink_to(o / "secret.mp3")
    (o / "passwd.mp3").symlink_to("/etc/passwd")
    return {
        "secret": str(o / "secret.mp3"), "missing": str(o / "missing.mp3"),
        "locked": str(o / "locked" / "inside.mp3"), "locked-missing": str(o / "locked" / "nope.mp3"),
        "dir": str(o / "dir.mp3"), "fifo": str(o / "fifo.mp3"), "text": str(o / "notes.txt"),
        "empty": str(o / "empty.mp3"), "symlink": str(o / "link.mp3"), "passwd": str(o / "passwd.mp3"),
        "etc": "/etc/passwd", "dev-zero": "/dev/zero", "proc": "/proc/self/environ",
        "dotdot": str(o / ".." / "outside" / "secret.mp3"),
        "data-dir": "{data}/queue.sqlite3", "vault": "{vault}/Daily/x.mp3",
    }


def _events(path: str) -> list[dict]:
    """Every way an API client can hand over a local path."""
    return [
        {"name": "transcript.process", "data": {"file": path, "title": "T", "source": "s"}},
        {"name": "video.download", "data": {"url": path}},
        {"name": "video.download", "data": {"url": f"file://{path}"}},
        {"name": "video.download", "data": {"url": f"file://localhost{path}"}},
    ]


def _shape(error: str, path: str) -> str:
    """The refusal with the echoed input taken out: what the client can learn from it."""
    for shown in (f"file://localhost{path}", f"file://{path}", path):
        error = error.replace(repr(shown)[1:-1], "<input>")
    return error


def _serve(root: Path, roots: list[Path]):
    """A FenceServer with `roots` as its media folders and the hostile files in `outside`."""
    srv = FenceServer(root, {"IGS_MEDIA_ROOTS": json.dumps([str(r) for r in roots])})
    srv.files = _files(srv.outside)
    try:
        yield srv
    finally:
        os.chmod(srv.outside / "locked", 0o700)
        srv.stop()


@pytest.fixture(scope="module")
def closed(tmp_path_factory):
    """The default: no media folders configured, so nothing local over HTTP."""
    yield from _serve(tmp_path_factory.mktemp("media-closed"), [])


def test_every_local_path_gets_one_identical_refusal_over_http(closed: Server) -> None:
    before = closed.snapshot()
    shapes, tried = set(), 0
    for name, path in closed.files.items():
        path = path.format(data=closed.data, vault=closed.vault)
        for event in _events(path):
            status, answer = closed.request("POST", "/events", json.dumps(event).encode(), AUTH)
            tried += 1
            assert status == 422, (name, event, answer)  # never a 500, never accepted
            assert "\n" not in answer["error"] and "Traceback" not in answer["error"]
            shapes.add(_shape(answer["error"], path))
    assert tried == 64
    # one refusal whatever is there: a real file, nothing, a folder, a FIFO, an unreadable folder
    assert len(shapes) == 1, shapes
    assert "not a media file under the media folders (none configured; IGS_MEDIA_ROOTS)" in shapes.pop()
    assert closed.snapshot() == before  # nothing written (the queue existed before)
    assert "PermissionError" not in closed.log.read_text() and "Traceback" not in closed.log.read_text()


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    """`inside` is the one media folder."""
    root = tmp_path_factory.mktemp("media-open")
    inside = root / "inside"
    for srv in _serve(root, [inside]):
        inside.mkdir()
        (inside / "talk.mp3").write_bytes(MEDIA.read_bytes())
        os.link(srv.outside / "secret.mp3", inside / "hardlink.mp3")  # same bytes, second name
        (inside / "symlink-out.mp3").symlink_to(srv.outside / "secret.mp3")
        (inside / "symlink-in.mp3").symlink_to(inside / "talk.mp3")
        srv.inside = inside
        yield srv


def test_with_a_media_folder_only_its_own_single_link_files_get_through(opened: Server) -> None:
    inside = opened.inside
    refusals, tried = set(), 0
    for name, path in opened.files.items():  # everything outside: still the one refusal
        path = path.format(data=opened.data, vault=opened.vault)
        for event in _events(path):
            status, answer = opened.request("POST", "/events", json.dumps(event).encode(), AUTH)
            tried += 1
            assert status == 422, (name, answer)
            refusals.add(_shape(answer["error"], path))
    assert len(refusals) == 1 and f"media folders ({inside}; IGS_MEDIA_ROOTS)" in refusals.pop()
    for path, reason in ((inside / "hardlink.mp3", "hard links"),
                         (inside / "symlink-out.mp3", "not a media file under the media folders"),
                         (inside / "nope.mp3", "no such file")):
        for event in _events(str(path)):
            status, answer = opened.request("POST", "/events", json.dumps(event).encode(), AUTH)
            tried += 1
            assert status == 422 and reason in answer["error"], (path, answer)
    assert tried == 76
    before_outside = {p: p.read_bytes() for p in opened.outside.rglob("*.mp3")
                      if p.is_file() and not p.is_fifo() and os.access(p, os.R_OK)}
    keys = set()
    for path in (inside / "talk.mp3", inside / "symlink-in.mp3"):
        for event in _events(str(path)):
            status, answer = opened.request("POST", "/events", json.dumps(event).encode(), AUTH)
            assert status == 202, answer
            keys.add(answer["key"])
    assert len(keys) == 1  # the same file however it was named: one partition
    assert {p: p.read_bytes() for p in before_outside} == before_outside


# ---- the worker checks again: an inbox source outside the folders, a file swapped later ----


def _download(settings, key: str, location: str) -> tuple[bool, str]:
    import dagster as dg

    from igs_dagster.core.inbox import EventQueue, Source
    from igs_dagster.definitions import defs
    from igs_dagster.defs.video.assets import video_download

    EventQueue(settings.queue_db).register_source(Source(key, "file", location, "file", "T"),
                                                  replace=True)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", [key])
        result = dg.materialize([video_download], instance=instance, partition_key=key,
                                resources=defs.resources, raise_on_error=False)
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    return result.success, failure.step_failure_data.error.message if failure else ""


def test_the_worker_copies_only_from_the_media_folders(tmp_path: Path, monkeypatch) -> None:
    from igs_dagster.core.events import VideoDownload, VideoDownloadData
    from igs_dagster.core.settings import load_settings
    from igs_dagster.video.intake import source_for

    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    monkeypatch.setenv("IGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
    monkeypatch.setenv("IGS_MEDIA_ROOTS", json.dumps([str(inside)]))
    settings = load_settings()
    secret = outside / "secret.mp3"
    secret.write_bytes(MEDIA.read_bytes())
    media = settings.media_dir

    ok, message = _download(settings, "file-secret-0123456789", str(secret))  # not via intake
    assert not ok and "not a media file under the media folders" in message
    assert not list(media.rglob("*.mp3"))

    def accepted(name: str) -> tuple[str, Path]:
        path = inside / name
        path.write_bytes(MEDIA.read_bytes())
        event = VideoDownload(name="video.download", data=VideoDownloadData(url=str(path)))
        source = source_for(event, settings)
        return source.key, Path(source.location)

    key, path = accepted("swapped.mp3")  # passed intake, then became a link to a file outside
    path.unlink()
    path.symlink_to(secret)
    ok, message = _download(settings, key, str(path))
    assert not ok and "not a media file under the media folders" in message, message

    key, path = accepted("linked.mp3")  # passed intake, then got a second name
    os.link(path, outside / "second-name.mp3")
    ok, message = _download(settings, key, str(path))
    assert not ok and "2 hard links" in message, message
    assert not list(media.rglob("*.mp3"))

    key, path = accepted("good.mp3")  # the control: a plain file inside is copied
    ok, message = _download(settings, key, str(path))
    assert ok, message
    assert [p.name for p in media.rglob("*.mp3")] == ["media.mp3"]
