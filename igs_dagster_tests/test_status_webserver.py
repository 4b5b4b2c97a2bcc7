"""`igs status` and `igs runs` through the webserver of `igs dev` (GraphQL, no Dagster import)
print what the instance path prints; a stale webserver record falls back to the instance."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.fig14_status import start_stack, stop_stack
from bench.run_history import write_runs
from igs_dagster_tests.dagster_env import DagsterEnv

VOLATILE = ("inbox_sensor_tick_age_s", "last_heartbeat")  # the daemon ticks between two reads


def _stable(text: str) -> dict | list:
    data = json.loads(text)
    if isinstance(data, dict):
        for key in VOLATILE:
            data["daemon"].pop(key)
    return data


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    dep = DagsterEnv.create(tmp_path_factory.mktemp("status-ws"))
    instance = dep.instance()
    write_runs(instance, 12, failed_every=4)
    instance.dispose()
    return dep


@pytest.mark.slow
def test_both_paths_print_the_same_and_the_fast_one_imports_no_dagster(history):
    dep = history
    state = dep.data / "webserver.json"
    stack = start_stack(dep)
    try:
        assert json.loads(state.read_text())["dagster_home"] == str(dep.home)
        # the sensor's first tick sets its cursor (None before): let it happen before both reads
        dep.wait_for(lambda: json.loads(dep.igs("status", "--json", check=True).stdout)
                     ["queue"]["sensor_cursor"] is not None, 120, "the igs_events sensor's first tick")
        fast = {args: dep.igs(*args.split(), check=True).stdout
                for args in ("status --json", "runs --json --limit 8", "status", "runs")}
        probe = ("import sys, runpy; sys.argv = ['igs', 'status']\n"
                 "try:\n runpy.run_module('igs_dagster.cli', run_name='__main__')\n"
                 "except SystemExit: pass\n"
                 "print('DAGSTER' if any(m == 'dagster' or m.startswith(('dagster.', 'dagster_'))"
                 " for m in sys.modules) else 'CLEAN', file=sys.stderr)")
        proc = dep.run(sys.executable, "-c", probe, check=True)
        assert proc.stderr.strip().splitlines()[-1] == "CLEAN", proc.stderr[-2000:]
        saved = state.read_text()
        state.unlink()
        slow = {args: dep.igs(*args.split(), check=True).stdout for args in fast}
        state.write_text(saved)
    finally:
        stop_stack(stack)
    assert not state.exists()  # a clean stop removes the record
    assert _stable(fast["status --json"]) == _stable(slow["status --json"])
    assert json.loads(fast["runs --json --limit 8"]) == json.loads(slow["runs --json --limit 8"])
    assert fast["runs"] == slow["runs"]
    runs = json.loads(fast["runs --json --limit 8"])
    assert len(runs) == 8 and any(s["error"] for r in runs for s in r["steps"])  # errors were read
    assert "recent failures: 3" in fast["status"]
    strip = [line for line in fast["status"].splitlines() if not line.startswith("daemon:")]
    assert strip == [line for line in slow["status"].splitlines() if not line.startswith("daemon:")]

    # a stale record (the stack was killed): one refused connect, then the instance path
    state.write_text(saved)
    proc = dep.igs("status", "--json", check=True)
    assert _stable(proc.stdout)["recent_failures"] == _stable(slow["status --json"])["recent_failures"]
    assert dep.igs("runs", check=True).stdout.splitlines()[2:] == slow["runs"].splitlines()[2:]


def test_stale_or_foreign_record_is_ignored(tmp_path):
    from igs_dagster.core import webserver

    home = tmp_path / "home"
    home.mkdir()
    assert webserver.find(tmp_path, home) is None  # no record
    webserver.record(tmp_path, "0.0.0.0", 9, str(home))
    url = webserver.find(tmp_path, home)
    assert url == "http://127.0.0.1:9"
    assert webserver.query(url, "{ __typename }", timeout=2) is None  # refused: down
    assert webserver.find(tmp_path, tmp_path / "other-home") is None  # another deployment's
    (tmp_path / "webserver.json").write_text("{not json")
    assert webserver.find(tmp_path, home) is None
    webserver.record(tmp_path, "127.0.0.1", 9, str(home))
    webserver.forget(tmp_path)
    assert not (tmp_path / "webserver.json").exists()


def test_status_without_webserver_imports_dagster_only_for_the_instance(tmp_path):
    """The command module itself and the formatter import no Dagster."""
    code = ("import sys; import igs_dagster.cli.app, igs_dagster.cli.run_format, igs_dagster.cli.run_graphql, "
            "igs_dagster.core.webserver, igs_dagster.cli.daemon_probe, igs_dagster.cli.settings_view; "
            "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith(('dagster.', 'dagster_'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
