"""system_log: canonical lines, many concurrent writer processes, dedupe, tail / follow."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from igs_dagster.core import system_log
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.system_log import LogEntry, format_entry, read_entries, tail, write_entry

WORKERS = 8
LINES_PER_WORKER = 500

# A barrier across processes: each worker says it is ready (its own file) and waits for the go
# file, which the parent creates once every worker is ready. Each prints how many dedupe writes
# it won and the monotonic clock (system-wide on Linux) around its writes.
WRITER = """
import sys, time
from pathlib import Path
from igs_dagster.core.system_log import write_entry
path, worker, go, count = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
(go.parent / f"ready-{worker}").touch()
while not go.exists():
    time.sleep(0.001)
fill = "ABCDEFGHIJKLMNOP"[worker]
won = 0
first = time.monotonic()
for i in range(count):
    size = 6000 if i % 5 == 0 else 100 + (i % 40) * 50   # every 5th line > 4 KB
    write_entry(path, "test.write", f"worker-{worker}", f"w{worker}:i{i}:" + fill * size,
                run_id=f"run-{worker}", partition=str(i))
    if i == count // 2:
        won += write_entry(path, "test.dedupe", f"worker-{worker}", "once",
                           dedupe_key="sensor:run-42:finished")
print(won, first, time.monotonic())
"""


def run_writers(path: Path, tmp_path: Path, workers: int, count: int) -> tuple[list[int], float, list]:
    """Start the writers, release them together; (dedupe wins, wall time, write intervals)."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", WRITER, str(path), str(w), str(go), str(count)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{w}").exists() for w in range(workers)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "writers not ready"
        time.sleep(0.01)
    started = time.monotonic()
    go.touch()
    outputs = [proc.communicate(timeout=300)[0].split() for proc in procs]
    elapsed = time.monotonic() - started
    assert all(proc.returncode == 0 for proc in procs)
    return [int(out[0]) for out in outputs], elapsed, [(float(o[1]), float(o[2])) for o in outputs]


def test_parallel_processes_never_interleave_lose_or_duplicate_lines(tmp_path: Path):
    log = tmp_path / "vault" / "system" / "system-log.jsonl"
    won, elapsed, intervals = run_writers(log, tmp_path, WORKERS, LINES_PER_WORKER)
    print(f"\n{WORKERS * LINES_PER_WORKER + 1} lines in {elapsed:.2f}s")
    # the writes overlapped: the last writer began before the first one finished, so at that
    # moment all of them were writing (otherwise the checks below would prove nothing)
    assert max(start for start, _ in intervals) < min(end for _, end in intervals), intervals

    raw_lines = log.read_bytes().split(b"\n")
    assert raw_lines[-1] == b""  # the file ends with a newline
    raw_lines = raw_lines[:-1]
    assert len(raw_lines) == WORKERS * LINES_PER_WORKER + 1
    seen: set[tuple[int, int]] = set()
    long_lines = 0
    for raw in raw_lines:
        data = json.loads(raw)  # every line is whole, valid JSON
        if data["action"] == "test.dedupe":
            assert data["key"] == "sensor:run-42:finished"
            continue
        worker = int(data["tool"].removeprefix("worker-"))
        prefix, body = data["detail"].rsplit(":", 1)
        i = int(prefix.split(":i")[1])
        assert prefix == f"w{worker}:i{i}"
        assert data["partition"] == str(i) and data["run_id"] == f"run-{worker}"
        expected = 6000 if i % 5 == 0 else 100 + (i % 40) * 50
        assert body == "ABCDEFGHIJKLMNOP"[worker] * expected  # no foreign bytes inside
        assert (worker, i) not in seen
        seen.add((worker, i))
        long_lines += len(raw) > 4096
    assert len(seen) == WORKERS * LINES_PER_WORKER
    stamps = [json.loads(raw)["timestamp"] for raw in raw_lines]
    assert stamps == sorted(stamps)  # stamped under the lock: file order is time order
    assert long_lines == WORKERS * LINES_PER_WORKER // 5
    # dedupe_key across processes: exactly one writer won.
    assert sum(won) == 1
    assert [e.key for e in read_entries(log) if e.key] == ["sensor:run-42:finished"]


def test_dedupe_key_is_written_once(tmp_path: Path):
    log = tmp_path / "log.jsonl"
    assert write_entry(log, "run.finished", "dagster", "ok", run_id="abc", dedupe_key="run:abc")
    assert not write_entry(
        log, "run.finished", "dagster", "ok again", run_id="abc", dedupe_key="run:abc"
    )
    assert write_entry(log, "run.finished", "dagster", "other", run_id="def", dedupe_key="run:def")
    assert write_entry(log, "note", "cli", "no key")
    assert write_entry(log, "note", "cli", "no key")  # no dedupe_key: always written
    assert [e.detail for e in read_entries(log)] == ["ok", "other", "no key", "no key"]


def test_dedupe_only_looks_back_a_bounded_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(system_log, "DEDUPE_WINDOW", 5)
    log = tmp_path / "log.jsonl"
    assert write_entry(log, "a", "t", "first", dedupe_key="k")
    for i in range(10):
        write_entry(log, "filler", "t", str(i))
    assert write_entry(log, "a", "t", "again, out of the window", dedupe_key="k")


def test_canonical_line_format(tmp_path: Path):
    log = tmp_path / "log.jsonl"
    write_entry(log, "video.download", "yt-dlp", "got it", partition="abc")
    write_entry(
        log,
        "agent.run",
        "pi",
        "línea ✓",
        reason="timeout",
        run_id="r1",
        partition="p",
        dedupe_key="k",
    )
    first, second = log.read_text(encoding="utf-8").splitlines()
    data = json.loads(first)
    assert list(data) == ["timestamp", "action", "tool", "detail", "partition"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["timestamp"])
    assert first == json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    assert list(json.loads(second)) == [
        "timestamp",
        "action",
        "tool",
        "detail",
        "reason",
        "run_id",
        "partition",
        "key",
    ]
    assert "línea ✓" in second  # UTF-8, not \\u escapes


def test_validation_errors_are_permanent_one_liners(tmp_path: Path):
    log = tmp_path / "log.jsonl"
    for action, tool in [("", "t"), ("a\nb", "t"), ("a", ""), ("a", "x\ry"), ("a", "  ")]:
        with pytest.raises(PermanentError) as info:
            write_entry(log, action, tool, "d")
        assert "\n" not in str(info.value)
    with pytest.raises(PermanentError):
        write_entry(log, "a", "t", 42)  # type: ignore[arg-type]
    with pytest.raises(PermanentError):
        write_entry(log, "a", "t", "d", dedupe_key="two\nlines")
    assert not log.exists()


def test_secrets_never_reach_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    secret = "sk-live-abcdefghijklmnop"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("IGS_POSTGRES__PASSWORD", "hunter2-long")
    log = tmp_path / "log.jsonl"
    write_entry(log, "agent.run", "codex", f"failed: auth {secret}", reason="db hunter2-long")
    text = log.read_text()
    assert secret not in text and "hunter2-long" not in text
    entry = read_entries(log)[0]
    assert entry.detail == "failed: auth [REDACTED:OPENAI_API_KEY]"
    assert entry.reason == "db [REDACTED:IGS_POSTGRES__PASSWORD]"


def test_long_details_are_kept_up_to_the_cap(tmp_path: Path):
    log = tmp_path / "log.jsonl"
    write_entry(log, "a", "t", "x" * 10_000)
    write_entry(log, "a", "t", "y" * (system_log.MAX_DETAIL_CHARS + 500))
    small, big = read_entries(log)
    assert small.detail == "x" * 10_000
    assert big.detail.startswith("y" * system_log.MAX_DETAIL_CHARS)
    assert big.detail.endswith("[truncated 500 chars]")


def test_a_torn_line_never_swallows_the_next_entry(tmp_path: Path):
    log = tmp_path / "log.jsonl"
    write_entry(log, "a", "t", "before")
    with open(log, "ab") as handle:  # a writer that died mid-line
        handle.write(b'{"timestamp":"2026-01-01T00:00:00Z","action":"torn","tool')
    write_entry(log, "a", "t", "after")
    assert [e.detail for e in read_entries(log)] == ["before", "after"]


def test_read_entries_last_n_over_many_chunks(tmp_path: Path):
    log = tmp_path / "log.jsonl"
    for i in range(300):
        write_entry(log, "a", "t", f"{i}:" + "z" * 700)
    assert [e.detail.split(":")[0] for e in read_entries(log, 7)] == [
        str(i) for i in range(293, 300)
    ]
    assert len(read_entries(log)) == 300
    assert read_entries(log, 0) == []
    assert read_entries(tmp_path / "missing.jsonl") == []


def test_format_entry_one_liner():
    entry = LogEntry(
        timestamp="2026-11-24T22:50:01.123Z",
        action="video.download",
        tool="yt-dlp",
        detail="downloaded abc\nmerged",
        run_id="abc12345-6789",
        partition="X",
    )
    assert format_entry(entry) == (
        "2026-11-24 22:50:01  video.download  yt-dlp  downloaded abc ⏎ merged"
        " [run abc12345 · partition X]"
    )
    plain = LogEntry("2026-11-24T22:50:01Z", "queue.add", "cli", "ok", reason="manual")
    assert format_entry(plain) == "2026-11-24 22:50:01  queue.add  cli  ok (reason: manual)"


def test_tail_last_n_human_and_json(tmp_path: Path):
    log = tmp_path / "log.jsonl"
    for i in range(30):
        write_entry(log, "step", "tool", f"entry {i}", partition=f"p{i}")
    out = io.StringIO()
    tail(log, 5, out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0].endswith("step  tool  entry 25 [partition p25]")
    assert lines[-1].endswith("entry 29 [partition p29]")

    out = io.StringIO()
    tail(log, 3, as_json=True, out=out)
    parsed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [p["detail"] for p in parsed] == ["entry 27", "entry 28", "entry 29"]
    assert out.getvalue().splitlines() == log.read_text().splitlines()[-3:]

    out = io.StringIO()
    tail(tmp_path / "missing.jsonl", 5, out=out)
    assert out.getvalue() == ""


@pytest.mark.parametrize("exists_at_start", [True, False])
def test_tail_follow_prints_new_lines_until_stopped(
    tmp_path: Path, exists_at_start: bool, monkeypatch: pytest.MonkeyPatch
):
    log = tmp_path / "system" / "log.jsonl"
    if exists_at_start:
        for i in range(3):
            write_entry(log, "old", "t", f"old {i}")
    monkeypatch.setattr(system_log, "FOLLOW_POLL_S", 0.02)
    started = threading.Event()

    def writer() -> None:
        started.wait(10)
        for i in range(20):
            write_entry(log, "new", "t", f"new {i}")
            time.sleep(0.005)

    out = io.StringIO()
    expected = (2 if exists_at_start else 0) + 20
    deadline = time.monotonic() + 30

    def stop() -> bool:
        started.set()
        return out.getvalue().count("\n") >= expected or time.monotonic() > deadline

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        tail(log, 2, follow=True, as_json=True, out=out, stop=stop)
    finally:
        thread.join()
    details = [json.loads(line)["detail"] for line in out.getvalue().splitlines()]
    old = ["old 1", "old 2"] if exists_at_start else []
    assert details == old + [f"new {i}" for i in range(20)]


def test_settings_system_log_path_is_used(igs_env):
    assert igs_env.system_log.name == "system-log.jsonl"
    assert write_entry(igs_env.system_log, "settings.check", "pytest", "hello")
    assert read_entries(igs_env.system_log)[0].detail == "hello"
