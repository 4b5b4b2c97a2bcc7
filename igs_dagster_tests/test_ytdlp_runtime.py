"""The JavaScript runtime and challenge scripts YouTube needs, as the two README commands install
them (issue 22): yt-dlp built with our options finds the bundled Deno and yt-dlp-ejs, the Deno
binary runs yt-dlp's own solver scripts on this platform, another runtime can be chosen, and
the floor pin lets `uv lock --upgrade-package yt-dlp` move it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from igs_dagster.core.errors import SettingsError
from igs_dagster.core.settings import YtdlpSettings, load_settings
from igs_dagster.video import ytdlp
from igs_dagster_tests.conftest import unavailable

REPO = Path(__file__).resolve().parent.parent
BUNDLED_DENO = Path(sysconfig.get_path("scripts")) / "deno"


def _debug_lines(cfg: YtdlpSettings) -> list[str]:
    lines: list[str] = []
    with ytdlp.open_ytdlp(cfg, {"verbose": True}, logger=ytdlp.YtdlpLogger(keep=lines)):
        pass
    return lines


def test_ytdlp_with_our_options_finds_deno_and_the_ejs_scripts():
    """yt-dlp's own verbose header (what `yt-dlp -v` prints) for our base options."""
    lines = _debug_lines(YtdlpSettings())
    runtimes = next(line for line in lines if "JS runtimes:" in line)
    libraries = next(line for line in lines if "Optional libraries:" in line)
    assert re.search(r"JS runtimes: deno-2\.\d+\.\d+$", runtimes), runtimes
    assert "yt_dlp_ejs-0." in libraries
    assert BUNDLED_DENO.is_file()  # the `deno` extra's binary, beside this Python


@pytest.fixture
def deno_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """yt-dlp's Deno challenge provider, as its YouTube extractor builds it from our options."""
    from yt_dlp.extractor.youtube.jsc._director import initialize_jsc_director

    monkeypatch.setenv("HOME", str(tmp_path))  # deno's analysis cache goes to ~/.cache/deno
    monkeypatch.setenv("DENO_DIR", str(tmp_path / "deno"))
    with ytdlp.open_ytdlp(YtdlpSettings()) as ydl:
        director = initialize_jsc_director(ydl.get_info_extractor("Youtube"))
        yield director.providers["Deno"]


def test_bundled_deno_runs_ytdlps_solver_scripts(deno_provider):
    """The Deno binary works on this platform, run exactly as yt-dlp runs it (its flags, script
    on stdin), and loads the EJS lib and core scripts from the yt-dlp-ejs package."""
    assert deno_provider.is_available()
    assert deno_provider.runtime_info.path == str(BUNDLED_DENO)
    lib, core = deno_provider._lib_script, deno_provider._core_script
    assert lib.source.value == core.source.value == "python package"  # yt-dlp-ejs, not the web
    out = deno_provider._run_js_runtime(
        "const words = ['ask', 'not'];\n"
        "console.log(JSON.stringify({n: words.length, up: words.map(w => w.toUpperCase())}));\n")
    assert json.loads(out) == {"n": 2, "up": ["ASK", "NOT"]}
    # the solver itself, given a player that is not YouTube's: it runs and rejects it
    from yt_dlp.extractor.youtube.jsc.provider import JsChallengeProviderError

    solver = (f"{lib.code}\nObject.assign(globalThis, lib);\n{core.code}\n"
              "console.log(JSON.stringify(jsc({type: 'player', player: 'var a = 1;', "
              "requests: [{type: 'n', challenges: ['abc']}], output_preprocessed: false})));\n")
    with pytest.raises(JsChallengeProviderError, match="unexpected structure"):
        deno_provider._run_js_runtime(solver)


def test_another_runtime_reaches_ytdlp(tmp_path: Path):
    """IGS_YTDLP__JS_RUNTIME=NAME[:PATH] becomes yt-dlp's js_runtimes, beside the bundled deno."""
    elsewhere = tmp_path / "bin" / "deno"
    elsewhere.parent.mkdir()
    elsewhere.symlink_to(BUNDLED_DENO)
    cfg = YtdlpSettings(js_runtime=f"deno:{elsewhere}")
    assert ytdlp.js_runtimes(cfg) == {"deno": {"path": str(elsewhere)}}
    with ytdlp.open_ytdlp(cfg) as ydl:
        assert ydl._js_runtimes["deno"].info.path == str(elsewhere)
    node = YtdlpSettings(js_runtime="node:/nonexistent/node")
    assert ytdlp.js_runtimes(node) == {"deno": {"path": None}, "node": {"path": "/nonexistent/node"}}
    with ytdlp.open_ytdlp(node) as ydl:
        assert ydl._js_runtimes["node"].info is None  # not there: yt-dlp goes on with deno
        assert ydl._js_runtimes["deno"].info.supported


def test_a_wrong_runtime_setting_is_one_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IGS_YTDLP__JS_RUNTIME", "rhino")
    with pytest.raises(SettingsError, match=r"^invalid setting IGS_YTDLP__JS_RUNTIME: use deno, node"):
        load_settings()


def _uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    if not found:
        unavailable("uv is not installed")
    return found


def _locked_versions() -> dict[str, str]:
    lock = tomllib.loads((REPO / "uv.lock").read_text("utf-8"))
    return {pkg["name"]: pkg["version"] for pkg in lock["package"] if "version" in pkg}


def test_floor_pin_lets_uv_upgrade_ytdlp(tmp_path: Path):
    """README's update command can move yt-dlp: the lock agrees with pyproject (real `uv lock
    --check`, offline: tests reach loopback only), yt-dlp is asked for with a floor that admits
    every later release (no `==` anywhere in the lock's requirements on it), and the runtime and
    the challenge scripts come with it as extras, so an upgraded lock keeps them."""
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "igs_dagster").mkdir()
    run = subprocess.run([_uv(), "lock", "--check", "--offline"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "UV_NO_PROGRESS": "1",
                              "UV_CACHE_DIR": str(tmp_path / "uv-cache")})
    assert run.returncode == 0, run.stderr
    locked = _locked_versions()
    later = Version(locked["yt-dlp"]).release
    later = Version(f"{later[0] + 1}.1.1")  # any release a year on
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    ytdlp_req = next(r for r in wanted if r.name == "yt-dlp")
    assert {"default", "deno"} <= ytdlp_req.extras
    assert ytdlp_req.specifier.contains(later) and ytdlp_req.specifier.contains(locked["yt-dlp"])
    lock = tomllib.loads((REPO / "uv.lock").read_text("utf-8"))
    for pkg in lock["package"]:
        for req in (pkg.get("metadata") or {}).get("requires-dist", []):
            if req["name"] == "yt-dlp" and "specifier" in req:
                assert SpecifierSet(req["specifier"]).contains(later), (pkg["name"], req)
    ytdlp_deps = next(p for p in lock["package"] if p["name"] == "yt-dlp")
    extras = ytdlp_deps.get("optional-dependencies", {})
    assert any(d["name"] == "deno" for d in extras.get("deno", []))
    assert any(d["name"] == "yt-dlp-ejs" for d in extras.get("default", []))
    assert "deno" in locked and "yt-dlp-ejs" in locked
