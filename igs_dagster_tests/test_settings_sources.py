"""Issue 26, item 5: settings errors point at the file and line, or the variable, that holds
the bad value; a TOML syntax error names its file; a misspelt IGS_* variable is warned about
with the closest known name; and a config file broken while the daemon runs is one line per
sensor tick (the UI's tick history, the daemon's log, `igs status`), `igs send --wait` says
why nothing moves, and the next good tick does the work that waited."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import PYTHON, REPO, DagsterEnv

BACKEND_ERROR = "Input should be 'auto', 'mlx' or 'faster-whisper'"


def _igs(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "igs_dagster.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def shell(tmp_path: Path) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGS_", "DAGSTER_"))}
    env.update(IGS_DATA_DIR=str(tmp_path / "data"), IGS_VAULT_DIR=str(tmp_path / "vault"))
    return env


def test_a_bad_value_in_the_config_file_names_the_file_and_line(shell, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('# my settings\nmax_height = 720\n\n[transcriber]\nmodel = "bundled"\n'
                      'backend = "gpu"\n')
    proc = _igs({**shell, "IGS_CONFIG": str(config)}, "settings")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (f"igs: error: invalid setting {config} line 6 (transcriber.backend): "
                           f"{BACKEND_ERROR}\n")
    # the same value from a variable names the variable, and wins over the file
    proc = _igs({**shell, "IGS_CONFIG": str(config), "IGS_TRANSCRIBER__BACKEND": "cuda"}, "settings")
    assert proc.stderr == f"igs: error: invalid setting IGS_TRANSCRIBER__BACKEND: {BACKEND_ERROR}\n"
    # every problem is listed, each with its source, on one line
    config.write_text('max_height = 5\n[transcriber]\nbackend = "gpu"\nmodle = "base"\n')
    proc = _igs({**shell, "IGS_CONFIG": str(config)}, "settings")
    assert proc.stderr.count("\n") == 1 and "more)" not in proc.stderr
    assert f"{config} line 1 (max_height): Input should be greater than or equal to 144" in proc.stderr
    assert f"{config} line 3 (transcriber.backend): {BACKEND_ERROR}" in proc.stderr
    assert f"{config} line 4 (transcriber.modle): not a setting (did you mean transcriber.model?)" in proc.stderr


def test_a_toml_syntax_error_names_the_file(shell, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[transcriber]\nmodel = bundled\n")
    proc = _igs({**shell, "IGS_CONFIG": str(config)}, "send", "--dry-run", "https://youtu.be/dQw4w9WgXcQ")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith(f"igs: error: config file {config}: ")
    assert "(at line 2, column 9)" in proc.stderr and proc.stderr.count("\n") == 1


def test_list_settings_take_what_people_write(shell, tmp_path, monkeypatch):
    """A list setting from a variable: one value, comma-separated values, or a JSON list; the
    refusal of a loopback URL names the exact variable line that allows it, and it does."""
    from igs_dagster.core.settings import load_settings

    url = "http://127.0.0.1:9/talk.mp4"
    refused = _igs(shell, "send", "--dry-run", url)
    assert (refused.returncode, refused.stdout) == (2, "")
    hint = "IGS_NETWORK__ALLOW=127.0.0.1"
    assert f"(to allow it: {hint}, or network.allow in the config file)" in refused.stderr
    allowed = _igs({**shell, "IGS_NETWORK__ALLOW": hint.split("=", 1)[1]}, "send", "--dry-run", url)
    assert (allowed.returncode, allowed.stderr) == (0, ""), allowed.stderr
    assert url in allowed.stdout

    media = tmp_path / "my media"
    for value, expected in (("nas.local", ["nas.local"]),
                            (" nas.local , 192.168.1.0/24,", ["nas.local", "192.168.1.0/24"]),
                            ('["nas.local"]', ["nas.local"])):
        env = {"IGS_NETWORK__ALLOW": value, "IGS_MEDIA_ROOTS": f"{media},{tmp_path}",
               "IGS_NOTIFY__EVENTS": "note.ready, video.failed"}
        for name, text in env.items():
            monkeypatch.setenv(name, text)
        settings = load_settings()
        assert settings.network.allow == expected
        assert settings.media_roots == [media, tmp_path]
        assert settings.notify.events == ["note.ready", "video.failed"]
    bad = _igs({**shell, "IGS_NETWORK__ALLOW": "[nas.local"}, "settings")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == ("igs: error: invalid setting IGS_NETWORK__ALLOW: not a JSON list; write "
                          'values separated by commas, or a JSON list such as ["a", "b"]\n')


def test_a_misspelt_variable_is_warned_with_the_closest_name(shell):
    proc = _igs({**shell, "IGS_TRANSCIBER__MODEL": "base", "IGS_DEBUG": "0"}, "send", "--dry-run",
                "https://youtu.be/dQw4w9WgXcQ")
    assert proc.returncode == 0 and proc.stdout.startswith("dQw4w9WgXcQ\t")
    assert proc.stderr == ("igs: warning: IGS_TRANSCIBER__MODEL is not a setting and is ignored "
                           "(did you mean IGS_TRANSCRIBER__MODEL?)\n")
    # a misspelt field inside a known group is an error, with the same hint
    proc = _igs({**shell, "IGS_TRANSCRIBER__MODLE": "base"}, "settings")
    assert proc.returncode == 2
    assert ("igs: error: invalid setting IGS_TRANSCRIBER__MODLE: not a setting "
            "(did you mean IGS_TRANSCRIBER__MODEL?)") in proc.stderr


def _replace(path: Path, text: str) -> None:
    """Write a file whole (temp + rename): a tick never reads it half-written."""
    temp = path.with_suffix(".tmp")
    temp.write_text(text)
    temp.replace(path)


def _ticks(dep: DagsterEnv) -> list:
    instance = dep.instance()
    for state in instance.all_instigator_state():
        if state.name == "igs_events":
            return list(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20))
    return []


@pytest.mark.slow
def test_a_config_broken_while_the_daemon_runs(tmp_path, media_server):
    config = tmp_path / "config.toml"
    good = "[transcriber]\nbeam_size = 5\n"
    config.write_text(good)
    dep = DagsterEnv.create(tmp_path / "dep", IGS_CONFIG=str(config), IGS_TRANSCIBER__MODEL="base")
    dep.start_daemon()
    try:
        dep.wait_for(lambda: _ticks(dep), 180, "the sensor's first tick")
        _replace(config, '[transcriber]\nbeam_size = 5\nbackend = "gpu"\n')  # broken while running
        broken_at = time.time()
        where = f"invalid setting {config} line 3 (transcriber.backend): {BACKEND_ERROR}"
        skipped = f"settings invalid, nothing done this tick: {where}"
        dep.wait_for(lambda: [t for t in _ticks(dep) if t.timestamp > broken_at][-2:-1], 60,
                     "two ticks after the config broke")
        assert [t.skip_reason for t in _ticks(dep) if t.timestamp > broken_at] == [skipped] * len(
            [t for t in _ticks(dep) if t.timestamp > broken_at])

        # igs status in the same shell (same broken file): it still answers, and says both
        proc = dep.igs("status")
        print(f"$ igs status   # config broken\n{proc.stdout}{proc.stderr}")
        assert proc.returncode == 0 and proc.stderr == ""
        lines = proc.stdout.splitlines()
        assert lines[0] == f"settings here: INVALID: {where} (shown below without the bad values)"
        assert f"inbox sensor: NOT WORKING: settings invalid, nothing done this tick: {where}" in lines
        status = json.loads(dep.igs("status", "--json", check=True).stdout)
        assert status["settings_error"] == where and where in status["sensor_problem"]

        # --wait from a shell whose own settings are fine: it says why nothing moves; Ctrl-C
        # stops the waiting, says the work goes on and how to follow it
        url = media_server.add(SAMPLE_MP4, "broken-config.mp4")
        shell = {**dep.env, "IGS_CONFIG": str(tmp_path / "mine.toml")}
        (tmp_path / "mine.toml").write_text(good)
        waiting = subprocess.Popen([PYTHON, "-m", "igs_dagster.cli", "send", "--wait", url],
                                   env=shell, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("starts no runs" in line for line in seen):
            seen.append(waiting.stdout.readline())
        waiting.send_signal(signal.SIGINT)
        rest, err = waiting.communicate(timeout=60)
        out = "".join(seen) + rest
        print(f"$ igs send --wait {url}   # ^C after the reason, exit {waiting.returncode}\n{out}{err}")
        key = out.split()[1]
        assert f"{key}: the igs_events sensor starts no runs: settings invalid, nothing done this tick: {where}" in out
        assert waiting.returncode == 130 and "Traceback" not in err
        assert out.rstrip().splitlines()[-1] == (
            f"stopped waiting; the work goes on in the daemon: `igs send --wait {url}` follows "
            "again, `igs videos` shows where they stand")

        # one line per tick in the daemon's log, never a traceback
        log = dep.daemon_log()
        assert "Traceback" not in log and f"skipped: settings invalid, nothing done this tick: {where}" in log

        # fixed: the next tick does the work that waited, and the same --wait follows it to the note
        _replace(config, good)
        proc = dep.igs("send", "--wait", "--timeout", "300", url, timeout=400)
        print(f"$ igs send --wait {url}   # config fixed\n{proc.stdout}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.splitlines()[-1].startswith(f"{key}: done → ")
        # the daemon's own misspelt variable, shown with the settings its runs see
        status = dep.igs("status", check=True)
        assert ("  warning      IGS_TRANSCIBER__MODEL is not a setting and is ignored (did you mean "
                "IGS_TRANSCRIBER__MODEL?)") in status.stdout.splitlines()
        assert status.stderr.startswith("igs: warning: IGS_TRANSCIBER__MODEL is not a setting")
    finally:
        dep.stop_daemon()


def test_both_sensors_skip_with_one_line_while_the_settings_are_invalid(igs_env, monkeypatch):
    import dagster as dg

    from igs_dagster.defs.events import igs_events
    from igs_dagster.defs.resources import IgsSettings
    from igs_dagster.defs.video.feeds import feed_sensor
    from igs_dagster.defs.video.waiting import waiting_videos

    monkeypatch.setenv("IGS_TRANSCRIBER__BACKEND", "gpu")
    want = f"settings invalid, nothing done this tick: invalid setting IGS_TRANSCRIBER__BACKEND: {BACKEND_ERROR}"
    with dg.instance_for_test() as instance:
        cursor = json.dumps({"inbox": 7, "outcomes": None, "watchdog": 0.0})
        result = igs_events(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert result.skip_reason.skip_message == want and result.cursor == cursor  # nothing lost
        assert feed_sensor(dg.build_sensor_context(instance=instance), igs=IgsSettings()).skip_message == want
        assert waiting_videos(dg.build_sensor_context(instance=instance), igs=IgsSettings()).skip_message == want
