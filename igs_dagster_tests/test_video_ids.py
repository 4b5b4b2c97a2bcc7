"""video_ids: every YouTube form gives one key, other inputs get stable safe keys, bad ones fail."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.video.ids import (
    SourceRef,
    is_partition_key,
    parse_source,
    slugify,
    text_key,
    timestamp_url,
    youtube_id,
)

VID = "dQw4w9WgXcQ"
ODD = "-_aB3dE9x_Z"  # IDs may start with '-' or '_'

YOUTUBE_FORMS = [
    f"https://www.youtube.com/watch?v={VID}",
    f"http://www.youtube.com/watch?v={VID}",
    f"https://youtube.com/watch?v={VID}",
    f"https://m.youtube.com/watch?v={VID}",
    f"https://music.youtube.com/watch?v={VID}",
    f"https://WWW.YouTube.com/watch?v={VID}",
    f"www.youtube.com/watch?v={VID}",
    f"youtube.com/watch?v={VID}",
    f"m.youtube.com/watch?v={VID}",
    f"https://www.youtube.com/watch?v={VID}&t=42s",
    f"https://www.youtube.com/watch?t=42&v={VID}",
    f"https://www.youtube.com/watch?v={VID}&list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs&index=3",
    f"https://www.youtube.com/watch?v={VID}&feature=youtu.be",
    f"https://www.youtube.com/watch?v={VID}#t=30",
    f"https://youtu.be/{VID}",
    f"https://youtu.be/{VID}?si=AbCdEfGhIjK",
    f"https://youtu.be/{VID}?t=10",
    f"youtu.be/{VID}",
    f"https://www.youtube.com/shorts/{VID}",
    f"https://youtube.com/shorts/{VID}?feature=share",
    f"https://www.youtube.com/embed/{VID}",
    f"https://www.youtube.com/embed/{VID}?start=5",
    f"https://www.youtube-nocookie.com/embed/{VID}",
    f"https://www.youtube.com/live/{VID}",
    f"https://www.youtube.com/live/{VID}?si=xyz",
    f"https://www.youtube.com/v/{VID}",
    f"https://www.youtube.com/watch/?v={VID}",
    f"  https://youtu.be/{VID}\n",
    VID,
    f" {VID} ",
]


@pytest.mark.parametrize("text", YOUTUBE_FORMS)
def test_youtube_forms_give_one_id(text: str) -> None:
    assert youtube_id(text) == VID
    ref = parse_source(text)
    assert ref == SourceRef("youtube", VID, f"https://www.youtube.com/watch?v={VID}", "youtube")


def test_youtube_id_may_start_with_dash() -> None:
    assert parse_source(f"https://youtu.be/{ODD}").key == ODD
    assert parse_source(ODD).key == ODD
    assert is_partition_key(ODD)


@pytest.mark.parametrize(
    "text",
    [
        "https://www.youtube.com/@somechannel",
        "https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
        f"https://www.youtube.com/watch?v={VID}x",
        "https://youtu.be/",
        "https://example.com/watch?v=" + VID,
        "not a url",
        "",
    ],
)
def test_youtube_id_none(text: str) -> None:
    assert youtube_id(text) is None


def test_web_url_key_is_stable_and_safe() -> None:
    a = parse_source("https://Example.COM:443/media/My%20Talk.mp4#frag")
    b = parse_source("https://example.com/media/My%20Talk.mp4")
    assert a == b
    assert a.kind == "url" and a.label == "web"
    assert a.location == "https://example.com/media/My%20Talk.mp4"
    assert a.key.startswith("web-my-20talk-") and is_partition_key(a.key)
    other = parse_source("https://example.com/media/My%20Talk.mp4?v=2")
    assert other.key != a.key and is_partition_key(other.key)


@pytest.mark.parametrize(
    "url",
    [
        "https://vimeo.com/123456789",
        "http://127.0.0.1:8080/jfk-inaugural.mp4",
        "https://example.com",
        "https://example.com/" + "very-long-name-" * 20 + ".mp4",
        "https://youtube.com.evil.example/watch?v=" + VID,
        "https://[::1]:8000/a.mp3",
        "https://bücher.example/vidéo.mp4",
    ],
)
def test_web_urls(url: str) -> None:
    ref = parse_source(url)
    assert ref.kind == "url"
    assert is_partition_key(ref.key) and ref.key.startswith("web-")
    assert parse_source(url) == ref


def test_local_file_key(tmp_path: Path, sample_mp4: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    media = tmp_path / "My Lecture (Part 1).MP4"
    shutil.copyfile(sample_mp4, media)
    ref = parse_source(str(media))
    assert ref.kind == "file" and ref.label == "file"
    assert ref.location == str(media.resolve())
    assert ref.key.startswith("file-my-lecture-part-1-") and is_partition_key(ref.key)
    monkeypatch.chdir(tmp_path)
    assert parse_source("My Lecture (Part 1).MP4") == ref
    assert parse_source("./My Lecture (Part 1).MP4") == ref
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_source("~/My Lecture (Part 1).MP4") == ref


def test_audio_file_accepted(jfk_mp3: Path, jfk_wav: Path) -> None:
    assert parse_source(str(jfk_mp3)).key.startswith("file-jfk-")
    assert parse_source(str(jfk_wav)).key != parse_source(str(jfk_mp3)).key


BAD_URLS = [
    "   ",
    "\t\n",
    "x" * 4097,
    "https://example.com/a\x00b.mp4",
    "https://example.com/a\x07.mp4",
    "https://example.com/a.mp4\nhttps://example.com/b.mp4",
    "https://example.com/\u202egpm.mp4",
    "ftp://example.com/video.mp4",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "data:video/mp4;base64,AAAA",
    "mailto:me@example.com",
    "ssh://host/video.mp4",
    "https://user:secret@example.com/video.mp4",
    "https://user@example.com/video.mp4",
    f"https://user:pw@www.youtube.com/watch?v={VID}",
    "https://",
    "https:example.com/video.mp4",
    "https://exa mple.com/video.mp4",
    "https://example.com/my video.mp4",
    "https://example.com\\@evil.com/x.mp4",
    "https://example.com:99999/x.mp4",
    "https://example.com:port/x.mp4",
    "https://-bad-.example/x.mp4",
    "https://exa_mple.com/x.mp4",
    "https://[::g]/x.mp4",
    "https://www.youtube.com/watch?v=",
    "https://www.youtube.com/watch?v=short",
    f"https://www.youtube.com/watch?v={VID}X",
    "https://www.youtube.com/watch?v=dQw4w9WgX!Q",
    f"https://www.youtube.com/watch?v={VID}&v=aaaaaaaaaaa",
    "https://www.youtube.com/watch",
    "https://www.youtube.com/@somechannel",
    "https://www.youtube.com/channel/UCuAXFkgsw1L7xaCfnd5JJOw",
    "https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
    "https://youtu.be/",
    "https://youtu.be/abc",
    f"https://youtu.be/{VID}/extra",
    "youtube.com/shorts/",
    "dQw4w9WgXc",
    "dQw4w9WgXcQQ",
    "dQw4w9WgXc!",
    "vimeo.com/123456",
]


@pytest.mark.parametrize("text", BAD_URLS)
def test_bad_text_refused(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PermanentError) as err:
        parse_source(text)
    _one_line(err.value)
    assert list(tmp_path.iterdir()) == []


def _one_line(err: PermanentError) -> None:
    message = str(err)
    assert message.startswith("invalid source")
    assert "\n" not in message and "\x00" not in message and len(message) < 300


def _bad_paths(root: Path) -> dict[str, str]:
    """Paths that exist or not, each a reason to refuse; built fresh inside `root`."""
    (root / "folder.mp4").mkdir()
    (root / "notes.txt").write_text("hello")
    (root / "noext").write_bytes(b"data")
    (root / "empty.mp4").write_bytes(b"")
    (root / "sub").mkdir()
    (root / "sub" / "clip.mp4").write_bytes(b"data")
    (root / "secret.mp4").write_bytes(b"data")
    (root / "secret.mp4").chmod(0)
    (root / "link.mp4").symlink_to(root / "notes.txt")
    (root / "dangling.mp4").symlink_to(root / "gone.mp4")
    os.mkfifo(root / "pipe.mp4")
    return {
        "missing": str(root / "missing.mp4"),
        "missing relative": "missing.mp4",
        "dotdot": str(root / "sub" / ".." / "sub" / "clip.mp4"),
        "dotdot relative": "sub/../sub/clip.mp4",
        "dotdot start": "../clip.mp4",
        "directory": str(root / "folder.mp4"),
        "directory relative": "sub",
        "root": "/",
        "wrong extension": str(root / "notes.txt"),
        "no extension": str(root / "noext"),
        "empty file": str(root / "empty.mp4"),
        "link to text": str(root / "link.mp4"),
        "dangling link": str(root / "dangling.mp4"),
        "fifo": str(root / "pipe.mp4"),
        "device": "/dev/null",
        "system file": "/etc/passwd",
        "nul in path": str(root / "sub" / "clip.mp4") + "\x00.mp4",
        "tilde missing": "~/definitely-not-here-igs.mp4",
        "unreadable": str(root / "secret.mp4"),
    }


def test_bad_paths_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cases = _bad_paths(tmp_path)
    if os.geteuid() == 0:  # root reads anything: permission bits can't refuse it
        cases.pop("unreadable")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    for name, text in cases.items():
        with pytest.raises(PermanentError) as err:
            parse_source(text)
        _one_line(err.value)
        assert sorted(str(p) for p in tmp_path.rglob("*")) == before, name
    (tmp_path / "secret.mp4").chmod(0o600)


def test_long_input_message_is_truncated() -> None:
    with pytest.raises(PermanentError) as err:
        parse_source("https://example.com/" + "a" * 5000)
    assert len(str(err.value)) < 200


def test_non_text_refused() -> None:
    with pytest.raises(PermanentError):
        parse_source(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Hello, World!", "hello-world"),
        ("  Ça va? Déjà vu — naïve café  ", "ca-va-deja-vu-naive-cafe"),
        ("../../etc/passwd", "etc-passwd"),
        ("日本語", "untitled"),
        ("", "untitled"),
        ("---", "untitled"),
        ("a" * 100, "a" * 80),
        ("CON", "con_"),  # a device name Windows reserves (issue 23)
    ],
)
def test_slugify(title: str, expected: str) -> None:
    assert slugify(title) == expected


def test_slugify_cut_never_ends_with_dash() -> None:
    assert slugify("abc def", max_len=4) == "abc"


def test_text_key() -> None:
    key = text_key("My Meeting Notes", "hello world\r\n")
    assert key == text_key("My Meeting Notes", "hello world")
    assert key.startswith("text-my-meeting-notes-") and is_partition_key(key)
    assert key != text_key("My Meeting Notes", "hello world!")
    assert is_partition_key(text_key("x" * 500, "y"))
    assert is_partition_key(text_key("", ""))


@pytest.mark.parametrize("key", ["", "a" * 65, "a/b", "a.b", "a b", "ключ", "abc\n", "..", None, 5])
def test_is_partition_key_refuses(key: object) -> None:
    assert not is_partition_key(key)  # type: ignore[arg-type]


def test_timestamp_url(jfk_mp3: Path) -> None:
    yt = parse_source(f"https://youtu.be/{VID}?t=3")
    assert timestamp_url(yt, 75) == f"https://www.youtube.com/watch?v={VID}&t=75s"
    assert timestamp_url(f"https://youtu.be/{VID}", 5) == (
        f"https://www.youtube.com/watch?v={VID}&t=5s"
    )
    web = parse_source("https://example.com/a.mp4")
    assert timestamp_url(web, 12) == "https://example.com/a.mp4#t=12"
    assert timestamp_url("https://example.com/a.mp4#old", 3) == "https://example.com/a.mp4#t=3"
    assert timestamp_url(parse_source(str(jfk_mp3)), 12) is None
    assert timestamp_url(str(jfk_mp3), 12) is None
    assert timestamp_url(web, -4) == "https://example.com/a.mp4#t=0"
