"""Issue 26, items 3 and 7: one service per data folder, and one verdict on the daemon.

A second `igs dev` on the data of a running one is refused with one line naming the running
one's pid and address, starts nothing and leaves the first one's webserver record alone (it
used to start a second daemon and, on stopping, delete the record, sending `igs status` down
the slow path). Right after the service stops, `igs status` says the daemon is not running,
in every line (it used to say `daemon: running` beside `no daemon running here` for 15 s)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from bench.fig14_status import start_stack, stop_stack
from igs_dagster_tests.dagster_env import PYTHON, DagsterEnv

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _refused(dep: DagsterEnv, argv: list[str]) -> subprocess.CompletedProcess:
    """Run a second service; it must end by itself (a started one is stopped and fails)."""
    proc = subprocess.Popen(argv, env=dep.env, cwd=dep.home, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        import os

        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"a second service started on the same data folder:\n{out}\n{err}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_a_second_service_is_refused_and_status_agrees_with_itself_after_a_stop(tmp_path):
    from igs_dagster.core import webserver

    dep = DagsterEnv.create(tmp_path)
    first = start_stack(dep)
    state = dep.data / "webserver.json"
    try:
        record = json.loads(state.read_text())
        assert record["pid"] == first.pid

        # `igs dev` and the stack itself (what `igs dev` execs), on the same data: refused
        for argv in ([PYTHON, "-m", "igs_dagster.cli", "dev", "--port", str(_free_port())],
                     [PYTHON, "-m", "igs_dagster.cli.stack", "--port", str(_free_port()),
                      "--data-dir", str(dep.data)]):
            proc = _refused(dep, argv)
            print(f"$ python {' '.join(argv[1:])}   # exit {proc.returncode}\n{proc.stderr}")
            assert proc.returncode == 2 and proc.stdout == ""
            assert proc.stderr == (
                f"igs: error: igs dev is already running on this data folder ({dep.data}): "
                f"pid {first.pid}, {record['url']}"
                + proc.stderr.split(record["url"], 1)[1].split(";")[0]
                + "; stop it first (or give this one another IGS_DATA_DIR)\n")
        assert json.loads(state.read_text()) == record  # the first one's record is untouched
        assert webserver.find(dep.data, dep.home) == record["url"]
        assert first.poll() is None
        from igs_dagster.core import service_lock

        holder = service_lock.holder(dep.data)
        assert holder and holder["pid"] == first.pid and holder["url"] == record["url"]

        # the sensor has ticked (fresh tick), then the service stops
        dep.wait_for(lambda: json.loads(dep.igs("status", "--json", check=True).stdout)
                     ["queue"]["sensor_cursor"] is not None, 180, "the igs_events sensor's first tick")
        before = json.loads(dep.igs("status", "--json", check=True).stdout)["daemon"]
        assert before["running"] and before["pids"]
    finally:
        stop_stack(first)
    stopped = time.monotonic()
    out = dep.igs("status", check=True).stdout
    status = json.loads(dep.igs("status", "--json", check=True).stdout)
    assert time.monotonic() - stopped < 15, "too slow to see the fresh-tick window"
    print(f"$ igs status   # right after the stop\n{out}")
    assert status["daemon"]["running"] is False, status["daemon"]
    assert "daemon: NOT running" in out and "daemon: running" not in out
    assert "(this shell, no daemon running here)" in out
    assert service_lock.holder(dep.data) is None and service_lock.stopped_at(dep.data) is not None
    assert not state.exists()
    # the data folder is free again: a new service takes the lock
    lock = service_lock.ServiceLock(dep.data)
    lock.acquire()
    lock.release()


def test_lock_is_dropped_by_the_kernel_when_its_holder_dies(tmp_path):
    from igs_dagster.core import service_lock

    code = ("import sys, time; from igs_dagster.core.service_lock import ServiceLock; "
            "ServiceLock(sys.argv[1]).acquire('http://127.0.0.1:1'); print('held', flush=True); "
            "time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert service_lock.holder(tmp_path)["pid"] == proc.pid
        with pytest.raises(service_lock.ServiceRunning, match=f"pid {proc.pid}, http://127.0.0.1:1"):
            service_lock.ServiceLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait(10)
    assert service_lock.holder(tmp_path) is None  # SIGKILL: no stop record, no lock either
    assert service_lock.stopped_at(tmp_path) is None
