"""Checks run as argv in the worktree; the judge passes only when every configured check did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from igs_dagster.loop.checks import CheckResult, run_checks
from igs_dagster.loop.judge import verdict
from igs_dagster.loop.prd import Checks

PY = sys.executable


def test_checks_report_pass_fail_missing_and_not_configured(tmp_path: Path) -> None:
    checks = Checks(
        typecheck=None,
        lint=f"{PY} -c \"print('lint output'); raise SystemExit(2)\"",
        test="no-such-test-runner-xyz --quick",
    )
    results = run_checks(checks, tmp_path, tmp_path / "out", timeout_s=30)
    by = {r.name: r for r in results}
    assert [r.name for r in results] == ["typecheck", "lint", "test"]
    assert by["typecheck"].status == "not configured" and by["typecheck"].output_path is None
    assert by["lint"].status == "failed" and by["lint"].returncode == 2
    assert by["lint"].reason == "exit 2" and "lint output" in by["lint"].tail
    assert Path(by["lint"].output_path).read_text().startswith("$ ")
    # A missing program FAILS with that reason: it never counts as "not configured".
    assert (
        by["test"].status == "failed"
        and by["test"].reason == "command not found: no-such-test-runner-xyz"
    )
    assert "command not found" in by["test"].tail
    result, feedback = verdict(results)
    assert result == "FAIL"
    assert "2 of 2 configured checks failed" in feedback
    assert "- typecheck: not configured" in feedback
    assert "### test failed (command not found: no-such-test-runner-xyz)" in feedback
    assert f"Full output: {by['lint'].output_path}" in feedback


def test_checks_run_in_the_worktree_and_pass(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here")
    checks = Checks(test=f"{PY} -c \"import pathlib; assert pathlib.Path('marker.txt').exists()\"")
    results = run_checks(checks, tmp_path, tmp_path / "out", timeout_s=30)
    assert [r.status for r in results] == ["not configured", "not configured", "passed"]
    result, summary = verdict(results)
    assert result == "PASS" and "test: passed (exit 0" in summary


def test_a_hanging_check_times_out(tmp_path: Path) -> None:
    checks = Checks(test=f"{PY} -c \"import time; print('started', flush=True); time.sleep(60)\"")
    [_, _, test] = run_checks(checks, tmp_path, tmp_path / "out", timeout_s=4)
    assert test.status == "failed" and test.reason == "timed out after 4 s"
    assert "started" in test.tail and "[timed out after 4 s]" in test.tail


def test_feedback_is_bounded_and_keeps_the_end_of_each_output(tmp_path: Path) -> None:
    big = "\n".join(f"line {i}" for i in range(5000)) + "\nTHE REAL ERROR"
    results = [
        CheckResult(name=name, command=command, status="failed", returncode=1,
                    output_path=f"/x/{name}.log", tail=big, reason="exit 1")
        for name, command in (("lint", "lint"), ("test", "t"))
    ]
    result, feedback = verdict(results, max_bytes=4096)
    assert result == "FAIL" and len(feedback.encode()) <= 4096 + 256
    assert feedback.count("THE REAL ERROR") == 2 and "[... earlier output cut ...]" in feedback
    assert "Full output: /x/lint.log" in feedback and "Full output: /x/test.log" in feedback


def test_no_configured_check_is_no_pass() -> None:
    result, feedback = verdict([CheckResult(name="test", status="not configured")])
    assert result == "FAIL" and "No check is configured" in feedback


def test_the_cancel_flag_stops_a_running_check(tmp_path: Path) -> None:
    import threading

    flag = tmp_path / "CANCEL"
    checks = Checks(
        lint=f'{PY} -c "import time; time.sleep(60)"',
        test=f'{PY} -c "print(1)"',
    )
    timer = threading.Timer(0.3, flag.write_text, args=("cancel\n",))
    timer.start()
    results = run_checks(checks, tmp_path, tmp_path / "out", timeout_s=60, cancel_file=flag)
    timer.join()
    assert [(r.name, r.status, r.reason) for r in results] == [
        ("typecheck", "not configured", "not configured"),
        ("lint", "failed", "cancelled"),
        ("test", "failed", "cancelled"),
    ]


def test_checks_never_run_bytecode_an_earlier_attempt_compiled(tmp_path: Path) -> None:
    # Attempt 1 writes a wrong function; attempt 2 fixes it with an edit of the same size in
    # the same second (a stand-in or a quick agent does that). Python validates a .pyc by
    # source mtime (seconds) and size, so bytecode left from attempt 1 (by the checks or by
    # the agent running the code) would run the old code and fail the fixed attempt.
    work = tmp_path / "worktree"
    tool_cache = work / ".venv" / "lib" / "__pycache__"  # a project's own environment
    tool_cache.mkdir(parents=True)
    (work / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tool_cache / "tool.cpython-311.pyc").write_bytes(b"kept")
    source = work / "calc.py"
    checks = Checks(
        typecheck=f"{PY} -m compileall -q .",
        test=f"{PY} -c \"import calc; assert calc.add(2, 3) == 5, calc.add(2, 3)\"",
    )
    source.write_text("def add(a, b):\n    return a - b\n")
    stamp = source.stat().st_mtime_ns
    first = run_checks(checks, work, tmp_path / "attempt-1", timeout_s=30)
    assert [r.status for r in first] == ["passed", "not configured", "failed"]
    assert not (work / "__pycache__").exists()  # the checks leave no bytecode behind
    # the agent runs the wrong code itself, then fixes it within the second
    subprocess.run([PY, "-m", "compileall", "-q", str(source)], check=True)  # noqa: S603
    assert list((work / "__pycache__").glob("calc.*.pyc"))
    source.write_text("def add(a, b):\n    return a + b\n")
    os.utime(source, ns=(stamp, stamp))  # the same second, the same size
    second = run_checks(checks, work, tmp_path / "attempt-2", timeout_s=30)
    assert [r.status for r in second] == ["passed", "not configured", "passed"], second[2].tail
    assert not (work / "__pycache__").exists()
    assert (tool_cache / "tool.cpython-311.pyc").read_bytes() == b"kept"
