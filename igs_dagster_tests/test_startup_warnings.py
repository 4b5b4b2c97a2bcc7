"""Start-up says nothing misleading: loading the code location warns about nothing, and
`igs dev` runs Dagster from DAGSTER_HOME (where its dagster.yaml is), so Dagster has no reason to
say a dagster.yaml "will not be used"."""

from __future__ import annotations

import importlib
import json
import warnings

import igs_dagster.definitions
from igs_dagster.cli import app


def test_loading_the_definitions_warns_about_nothing():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importlib.reload(igs_dagster.definitions)
        defs = igs_dagster.definitions.defs
        defs.resolve_job_def("video_ingest")
        assert {s.name for s in defs.get_repository_def().sensor_defs} == {"igs_events", "feed_sensor", "igs_watchdog",
                                                                           "waiting_videos"}
    dagster_warnings = [str(w.message) for w in caught if "dagster" in w.filename]
    assert not dagster_warnings, dagster_warnings


def test_igs_dev_runs_dagster_from_dagster_home(monkeypatch, tmp_path):
    monkeypatch.setenv("IGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IGS_VAULT_DIR", str(tmp_path / "vault"))
    monkeypatch.setenv("DAGSTER_HOME", "")  # whatever an earlier test left: not this test's home
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dagster.yaml").write_text("telemetry: {enabled: false}\n")  # a stray one here
    seen = {}

    def fake_execv(program, argv):  # record instead of replacing the test process
        import os

        seen.update(program=program, argv=argv, cwd=os.getcwd(), home=os.environ["DAGSTER_HOME"])
        raise SystemExit(0)

    monkeypatch.setattr("os.execv", fake_execv)
    assert app.main(["dev", "--port", "3999"]) == 0
    assert seen["cwd"] == seen["home"] == str(tmp_path / "data" / "dagster_home")
    assert seen["argv"][1:] == ["-m", "igs_dagster.cli.stack", "--host", "127.0.0.1", "--port", "3999",
                                "--data-dir", str(tmp_path / "data")]
    assert app.main(["dev", "--port", "3999", "--reload"]) == 0
    assert seen["argv"][1:4] == ["-m", "dagster", "dev"]
    assert json.dumps(seen["argv"]).count("igs_dagster.definitions") == 1


def test_igs_dev_starts_webserver_and_daemon_with_a_slower_code_server_watch(tmp_path):
    """`igs dev`'s webserver and daemon go through cli/dagster_entry, which sets Dagster's
    code-server watch interval (dagster_compat entry 2, checked in test_dagster_compat) and
    still start the wrapped programs."""
    import subprocess
    import sys

    from igs_dagster.cli import dagster_entry, stack
    from igs_dagster.dagster_compat import DAEMON_MODULE

    argv = stack.commands(sys.executable, tmp_path, "127.0.0.1", 3999)
    assert argv["webserver"][1:4] == ["-m", stack.ENTRY, "dagster_webserver"]
    assert argv["daemon"][1:5] == ["-m", stack.ENTRY, DAEMON_MODULE, "run"]
    probe = ("import runpy, sys; from dagster._grpc import server_watcher as w; "
             f"sys.argv = ['x', '{DAEMON_MODULE}', '--help']; "
             "from igs_dagster.cli import dagster_entry as e\n"
             "try:\n    e.main()\nexcept SystemExit:\n    pass\nprint('watch', w.WATCH_INTERVAL)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "run" in out.stdout and f"watch {dagster_entry.WATCH_S}" in out.stdout, out.stdout + out.stderr
    bad = subprocess.run([sys.executable, "-m", stack.ENTRY, "os"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "usage:" in bad.stderr and "Traceback" not in bad.stderr
