"""agent_runner with real processes: stand-in agent CLIs are Python scripts written to tmp.

Orphans are checked by pid: a pid counts as gone when it no longer exists or is a zombie
(reaped by whoever inherited it).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from igs_dagster.core import agent_runner, process_groups
from igs_dagster.core.agent_runner import DEFAULT_COMMANDS, AgentResult, agent_command, run_agent
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.process_groups import kill_from_pid_file, stop_process_group
from igs_dagster.core.settings import AgentSettings
from igs_dagster_tests.conftest import pid_gone

WAIT_S = 30.0  # upper bound for things that normally take milliseconds

# `python -c` program: ignores SIGTERM, writes "ready" to the file named by its argument, hangs.
DEAF_TO_SIGTERM = repr(
    "import pathlib, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "pathlib.Path(sys.argv[1]).write_text('ready')\n"
    "time.sleep(600)\n"
)

# Spawns a grandchild that ignores SIGTERM, records both pids in pids.json, then hangs.
# With STUBBORN=1 the agent itself ignores SIGTERM too, so only SIGKILL can end it.
HANGING_AGENT = """
import json, os, signal, subprocess, sys, time
if os.environ.get("STUBBORN") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.stdin.read()
grandchild = subprocess.Popen([sys.executable, "-c", DEAF_TO_SIGTERM, "grandchild-ready"])
while not os.path.exists("grandchild-ready"):
    time.sleep(0.01)
with open("pids.tmp", "w") as handle:
    json.dump({"child": os.getpid(), "grandchild": grandchild.pid}, handle)
os.replace("pids.tmp", "pids.json")
print("agent ready", flush=True)
time.sleep(600)
""".replace("DEAF_TO_SIGTERM", DEAF_TO_SIGTERM)


def make_agent(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / "bin" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body).lstrip(), encoding="utf-8")
    path.chmod(0o755)
    return path


def wait_for(predicate, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def read_pids(work: Path) -> dict[str, int]:
    assert wait_for(lambda: (work / "pids.json").exists()), "agent never got ready"
    return json.loads((work / "pids.json").read_text())


def assert_all_gone(pids: dict[str, int]) -> None:
    for role, pid in pids.items():
        assert wait_for(lambda pid=pid: pid_gone(pid), timeout=10), f"{role} {pid} survived"


def force_kill(pids: dict[str, int]) -> None:
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


# --------------------------------------------------------------------------- commands


def test_default_commands_are_documented_and_take_the_prompt_on_stdin():
    # Print mode, the prompt on stdin, and the web tools each real CLI needs to research
    # (igs_dagster_tests/agents: pi 0.73.1, claude 2.1.332, codex 0.169.0).
    pi, claude, codex = (DEFAULT_COMMANDS[tool] for tool in ("pi", "claude", "codex"))
    assert pi[:2] == ["pi", "--print"] and "--no-session" in pi
    assert "--no-extensions" not in pi  # it would remove the user's web-search extension
    assert claude[:2] == ["claude", "-p"] and "--allowedTools=WebSearch,WebFetch" in claude
    assert claude[claude.index("--permission-mode") + 1] == "acceptEdits"
    assert codex[:2] == ["codex", "exec"] and codex[-1] == "-"  # "-": instructions from stdin
    assert codex[codex.index("--sandbox") + 1] == "workspace-write"
    assert codex[codex.index("-c") + 1] == 'web_search="live"'
    assert {"--skip-git-repo-check", "--ephemeral"} <= set(codex)
    assert set(DEFAULT_COMMANDS) == {"pi", "claude", "codex"}
    source = inspect.getsource(agent_runner)
    for reference in ("badlogic/pi-mono", "code.claude.com/docs", "openai/codex"):
        assert reference in source
    for tool, argv in DEFAULT_COMMANDS.items():
        assert agent_command(tool) == argv
        assert agent_command(tool) is not DEFAULT_COMMANDS[tool]  # callers may mutate theirs


def test_agent_command_settings_override_and_unknown_tool():
    settings = AgentSettings(claude_command=["claude", "-p", "--model", "sonnet"])
    assert agent_command("claude", settings) == ["claude", "-p", "--model", "sonnet"]
    assert agent_command("pi", settings) == DEFAULT_COMMANDS["pi"]
    with pytest.raises(PermanentError, match="unknown agent tool 'gemini'"):
        agent_command("gemini")
    # research off (IGS_AGENT__RESEARCH=false): the web tools are turned off, not just unused
    quiet = AgentSettings(research=False)
    assert agent_command("pi", quiet) == DEFAULT_COMMANDS["pi"]
    assert agent_command("claude", quiet)[-1] == "--disallowedTools=WebSearch,WebFetch"
    assert agent_command("codex", quiet)[-3:] == ["-c", 'web_search="disabled"', "-"]
    with pytest.raises(PermanentError, match="IGS_AGENT__CODEX_COMMAND"):
        agent_command("codex", AgentSettings(codex_command=[]))


# --------------------------------------------------------------------------- happy path


def test_agent_reads_prompt_from_stdin_and_edits_a_file(tmp_path: Path, work: Path):
    agent = make_agent(
        tmp_path,
        "editor",
        """
        import pathlib, sys
        prompt = sys.stdin.read()
        note = pathlib.Path("note.md")
        note.write_text(note.read_text() + prompt.upper())
        print("edited note.md with", len(prompt), "chars")
        print("warning on stderr", file=sys.stderr)
        """,
    )
    (work / "note.md").write_text("# Note\n")
    output = tmp_path / "runs" / "r1" / "agent.log"
    pid_file = tmp_path / "runs" / "r1" / "agent.pid"

    result = run_agent(
        "pi",
        "add a summary\n",
        work,
        output,
        timeout_s=60,
        argv=[str(agent), "--print"],
        pid_file=pid_file,
    )

    assert result.ok and result.returncode == 0
    assert not result.timed_out and not result.cancelled
    assert (work / "note.md").read_text() == "# Note\nADD A SUMMARY\n"
    stored = output.read_text()
    assert "edited note.md with 14 chars" in stored and "warning on stderr" in stored
    assert result.output_path == output
    assert result.tail == stored[-2048:]
    assert result.argv == [str(agent), "--print"]
    assert not pid_file.exists()
    data = json.loads(json.dumps(result.to_json()))
    assert data["ok"] is True and data["output_path"] == str(output) and data["tool"] == "pi"


def test_nonzero_exit_is_not_ok(tmp_path: Path, work: Path):
    agent = make_agent(tmp_path, "fails", "import sys\nprint('boom')\nsys.exit(3)\n")
    result = run_agent("codex", "x", work, tmp_path / "out.log", timeout_s=60, argv=[str(agent)])
    assert result.returncode == 3 and not result.ok and "boom" in result.tail


def test_tail_is_the_last_2kb(tmp_path: Path, work: Path):
    agent = make_agent(
        tmp_path, "chatty", "for i in range(2000):\n    print(f'line {i:05d}')\nprint('THE END')\n"
    )
    result = run_agent("pi", "", work, tmp_path / "out.log", timeout_s=60, argv=[str(agent)])
    assert len(result.tail) == agent_runner.TAIL_CHARS
    assert result.tail.endswith("line 01999\nTHE END\n")


def test_two_megabyte_prompt_passes_through_stdin(tmp_path: Path, work: Path):
    agent = make_agent(
        tmp_path,
        "digest",
        """
        import hashlib, json, sys
        data = sys.stdin.buffer.read()
        json.dump({"len": len(data), "sha256": hashlib.sha256(data).hexdigest()},
                  open("digest.json", "w"))
        """,
    )
    prompt = ("0123456789abcdef" * 64 + "\n") * 2048  # ~2 MB, far beyond ARG_MAX per argument
    result = run_agent(
        "claude", prompt, work, tmp_path / "out.log", timeout_s=120, argv=[str(agent)]
    )
    assert result.ok
    digest = json.loads((work / "digest.json").read_text())
    assert digest["len"] == len(prompt.encode()) > 2_000_000
    assert digest["sha256"] == hashlib.sha256(prompt.encode()).hexdigest()


# --------------------------------------------------------------------------- stopping


def test_timeout_kills_child_and_sigterm_ignoring_grandchild(tmp_path: Path, work: Path):
    agent = make_agent(tmp_path, "hang", HANGING_AGENT)
    pid_file = tmp_path / "agent.pid"
    try:
        result = run_agent(
            "pi",
            "work forever",
            work,
            tmp_path / "out.log",
            timeout_s=5,
            argv=[str(agent)],
            env={"STUBBORN": "1"},
            pid_file=pid_file,
            grace_s=0.5,
        )
        pids = read_pids(work)
        assert result.timed_out and not result.cancelled and not result.ok
        assert result.returncode == -signal.SIGKILL  # SIGTERM was ignored: SIGKILL was needed
        assert "agent ready" in result.tail
        assert_all_gone(pids)
        assert not pid_file.exists()
    finally:
        if (work / "pids.json").exists():
            force_kill(json.loads((work / "pids.json").read_text()))


def _cancel_once_ready(tmp_path: Path, work: Path, timeout_s: float):
    """Run the hanging agent; touch the cancel file as soon as its "agent ready" line streams
    in; check that the cancel stopped its whole group. Returns what streamed."""
    agent = make_agent(tmp_path, "hang", HANGING_AGENT)
    cancel = tmp_path / "cancel"
    seen: list[str] = []

    def on_output(text: str) -> None:
        seen.append(text)
        if "agent ready" in "".join(seen):
            cancel.touch()

    try:
        result = run_agent("codex", "x", work, tmp_path / "out.log", timeout_s=timeout_s,
                           argv=[str(agent)], grace_s=0.5, cancel_file=cancel, on_output=on_output)
        assert result.cancelled and not result.timed_out and not result.ok, "".join(seen)
        assert_all_gone(read_pids(work))
    finally:
        if (work / "pids.json").exists():
            force_kill(json.loads((work / "pids.json").read_text()))
    return "".join(seen)


def test_cancel_file_mid_run_stops_the_group(tmp_path: Path, work: Path):
    _cancel_once_ready(tmp_path, work, timeout_s=300)


def test_cancel_file_present_before_start_runs_nothing(tmp_path: Path, work: Path):
    agent = make_agent(tmp_path, "never", "open('ran', 'w').write('yes')\n")
    cancel = tmp_path / "cancel"
    cancel.touch()
    result = run_agent(
        "pi", "x", work, tmp_path / "out.log", timeout_s=60, argv=[str(agent)], cancel_file=cancel
    )
    assert result.cancelled and result.returncode is None and not result.ok
    assert not (work / "ran").exists()


@pytest.mark.parametrize("with_cancel_file", [False, True])
def test_kill_from_pid_file_from_another_thread(tmp_path: Path, work: Path, with_cancel_file):
    agent = make_agent(tmp_path, "hang", HANGING_AGENT)
    pid_file = tmp_path / "agent.pid"
    cancel = tmp_path / "cancel"
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            run_agent,
            "claude",
            "x",
            work,
            tmp_path / "out.log",
            timeout_s=300,
            argv=[str(agent)],
            pid_file=pid_file,
            cancel_file=cancel,
            grace_s=0.5,
        )
        try:
            pids = read_pids(work)
            assert wait_for(pid_file.exists)  # written just after the start, with two fsyncs
            recorded = json.loads(pid_file.read_text())
            assert recorded["pid"] == recorded["pgid"] == pids["child"]
            if with_cancel_file:  # what `igs loop cancel` does: mark, then stop at once
                cancel.touch()
            assert kill_from_pid_file(pid_file, grace_s=0.5) is True
            result: AgentResult = future.result(timeout=WAIT_S)
        finally:
            if (work / "pids.json").exists():
                force_kill(json.loads((work / "pids.json").read_text()))
    assert result.returncode == -signal.SIGTERM and not result.ok
    assert not result.timed_out and result.cancelled is with_cancel_file
    assert_all_gone(pids)
    assert not pid_file.exists()
    assert kill_from_pid_file(pid_file) is False  # nothing left to do


RUNNER = """
import sys
from pathlib import Path
from igs_dagster.core.agent_runner import run_agent
agent, work, out, pid_file = sys.argv[1:5]
run_agent("pi", "x", Path(work), Path(out), timeout_s=300, argv=[agent],
          pid_file=Path(pid_file), grace_s=0.5)
"""


def start_runner(agent: Path, work: Path, tmp_path: Path, pid_file: Path) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-c",
            RUNNER,
            str(agent),
            str(work),
            str(tmp_path / "out.log"),
            str(pid_file),
        ]
    )


@contextlib.contextmanager
def _hanging_runner(tmp_path: Path, work: Path):
    """A runner process on a hanging agent, once the agent's tree and pid file exist; whatever
    the test does, nothing is left running afterwards."""
    agent = make_agent(tmp_path, "hang", HANGING_AGENT)
    pid_file = tmp_path / "agent.pid"
    runner = start_runner(agent, work, tmp_path, pid_file)
    pids: dict[str, int] = {}
    try:
        pids = read_pids(work)
        assert wait_for(pid_file.exists)
        yield runner, pids, pid_file
    finally:
        runner.kill()
        force_kill(pids)


def test_runner_killed_hard_takes_its_agent_tree_with_it(tmp_path: Path, work: Path):
    """SIGKILL on the runner (no finally runs; issue 24, item 6): the agent and its grandchild,
    in a session of their own and ignoring SIGTERM, are gone within a bound all the same (the
    guard sees its caller's pipe close). The pid file is left behind; using it afterwards
    touches nothing (the recorded process is gone)."""
    with _hanging_runner(tmp_path, work) as (runner, pids, pid_file):
        recorded = json.loads(pid_file.read_text())
        assert recorded["runner_pid"] == runner.pid and recorded["pid"] == pids["child"]
        runner.kill()
        runner.wait(timeout=WAIT_S)
        assert_all_gone(pids)  # within 10 s: grace 0.5 s, then SIGKILL
        assert kill_from_pid_file(pid_file, grace_s=0.5) is False
        assert not pid_file.exists()


ORPHANER = """
import os, sys, time
sys.stdin.read()
if os.fork() == 0:  # a helper that starts a daemon and exits at once (double fork)
    os.setsid()
    if os.fork() == 0:
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open("orphan.pid.tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace("orphan.pid.tmp", "orphan.pid")
        time.sleep(600)
    os._exit(0)
os.wait()
while not os.path.exists("orphan.pid"):
    time.sleep(0.005)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux's")
def test_an_orphan_that_left_the_group_before_anyone_looked_is_stopped_too(tmp_path: Path, work: Path):
    """A daemon double-forked by a helper that exits at once (re-parented away from the
    command, in a session of its own, ignoring SIGTERM): nothing scans the process table, yet
    it is stopped with the rest, because the guard is its subreaper (on main it escaped
    unless a 0.2 s scan happened to see it first)."""
    agent = make_agent(tmp_path, "orphaner", ORPHANER)
    result = run_agent("pi", "x", work, tmp_path / "out.log", timeout_s=3, argv=[str(agent)],
                       grace_s=0.5)
    orphan = int((work / "orphan.pid").read_text())
    try:
        assert result.timed_out
        assert wait_for(lambda: pid_gone(orphan), timeout=10), f"orphan {orphan} survived"
    finally:
        if not pid_gone(orphan):
            os.kill(orphan, signal.SIGKILL)


def test_pid_file_without_a_start_time_never_kills(tmp_path: Path):
    """A pid file that cannot prove which process it meant (no start time: written by an
    older runner, or hand-made) is stale: the process now at that pid is left alone."""
    bystander = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        pid_file = tmp_path / "agent.pid"
        pid_file.write_text(json.dumps({"pid": bystander.pid, "pgid": bystander.pid}))
        assert kill_from_pid_file(pid_file, grace_s=0.1) is False
        time.sleep(0.5)
        assert bystander.poll() is None
        assert not pid_file.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_runner_receiving_sigterm_stops_the_group(tmp_path: Path, work: Path):
    """A plain process (no SIGTERM handler) that is terminated still cleans up."""
    with _hanging_runner(tmp_path, work) as (runner, pids, pid_file):
        runner.terminate()
        assert runner.wait(timeout=WAIT_S) == 128 + signal.SIGTERM
        assert_all_gone(pids)
        assert not pid_file.exists()


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_exception_in_callers_thread_stops_the_group(tmp_path: Path, work: Path, exc):
    agent = make_agent(tmp_path, "hang", HANGING_AGENT)
    pid_file = tmp_path / "agent.pid"

    def on_output(text: str) -> None:
        if (work / "pids.json").exists():
            raise exc("caller gave up")

    try:
        with pytest.raises(exc, match="caller gave up"):
            _run_stubborn("pi", agent, work, tmp_path, pid_file=pid_file, on_output=on_output)
        assert_all_gone(read_pids(work))
        assert not pid_file.exists()
    finally:
        if (work / "pids.json").exists():
            force_kill(json.loads((work / "pids.json").read_text()))


def test_background_leftovers_are_stopped_after_a_normal_exit(tmp_path: Path, work: Path):
    agent = make_agent(
        tmp_path,
        "daemonizer",
        """
        import os, subprocess, sys, time
        sys.stdin.read()
        child = subprocess.Popen([sys.executable, "-c", DEAF_TO_SIGTERM, "bg-ready"])
        while not os.path.exists("bg-ready"):
            time.sleep(0.01)
        open("bg.pid", "w").write(str(child.pid))
        print("done, left a server running")
        """.replace("DEAF_TO_SIGTERM", DEAF_TO_SIGTERM),
    )
    result = run_agent(
        "pi", "x", work, tmp_path / "out.log", timeout_s=60, argv=[str(agent)], grace_s=0.5
    )
    background = int((work / "bg.pid").read_text())
    try:
        assert result.ok
        assert wait_for(lambda: pid_gone(background), timeout=10)
    finally:
        if not pid_gone(background):
            os.kill(background, signal.SIGKILL)


def test_stale_pid_file_with_reused_pid_is_left_alone(tmp_path: Path):
    if process_groups.start_time(os.getpid()) is None:
        pytest.skip("needs /proc to detect pid reuse")
    bystander = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        pid_file = tmp_path / "agent.pid"
        real_start = process_groups.start_time(bystander.pid)
        pid_file.write_text(
            json.dumps({"pid": bystander.pid, "pgid": bystander.pid, "proc_start": real_start - 1})
        )
        assert kill_from_pid_file(pid_file, grace_s=0.1) is False
        assert bystander.poll() is None
        assert not pid_file.exists()
    finally:
        bystander.kill()
        bystander.wait()


def _run_stubborn(tool: str, agent: Path, work: Path, tmp_path: Path, **kw):
    """run_agent on a hanging stand-in with a long timeout and a short grace period."""
    return run_agent(tool, "x", work, tmp_path / "out.log", timeout_s=300, argv=[str(agent)],
                     grace_s=0.5, **kw)


def test_stop_process_group_refuses_our_own_group_and_ignores_gone_ones():
    with pytest.raises(ValueError):
        stop_process_group(os.getpgrp())
    with pytest.raises(ValueError):
        stop_process_group(1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)  # noqa: S603
    gone.wait()
    assert stop_process_group(gone.pid, grace_s=0.1) is False


# --------------------------------------------------------------------------- secrets, errors


def test_env_secrets_are_redacted_from_tail_json_output_and_stream(
    tmp_path: Path, work: Path, monkeypatch: pytest.MonkeyPatch
):
    secret = "sk-test-0123456789abcdefXYZ"
    token = "tok-9876543210-zyxwvu"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    agent = make_agent(
        tmp_path,
        "leaky",
        """
        import os, sys, time
        sys.stdin.read()
        print("key is", os.environ["OPENAI_API_KEY"], flush=True)
        print("token is", os.environ["OTHER_TOKEN"], flush=True)
        half = len(os.environ["OPENAI_API_KEY"]) // 2
        sys.stdout.write("split " + os.environ["OPENAI_API_KEY"][:half]); sys.stdout.flush()
        time.sleep(0.5)
        sys.stdout.write(os.environ["OPENAI_API_KEY"][half:] + " end\\n"); sys.stdout.flush()
        """,
    )
    chunks: list[str] = []
    result = run_agent(
        "pi",
        "x",
        work,
        tmp_path / "out.log",
        timeout_s=60,
        argv=[str(agent), f"--header=Bearer {secret}"],
        env={"OTHER_TOKEN": token},
        on_output=chunks.append,
    )
    assert result.ok
    streamed = "".join(chunks)
    exported = json.dumps(result.to_json())
    stored = (tmp_path / "out.log").read_text()
    for text in (result.tail, exported, stored, streamed, " ".join(result.argv)):
        assert secret not in text and token not in text
    assert "key is [REDACTED:OPENAI_API_KEY]" in result.tail
    assert "token is [REDACTED:OTHER_TOKEN]" in result.tail
    assert "split [REDACTED:OPENAI_API_KEY] end" in streamed
    assert result.argv[1] == "--header=Bearer [REDACTED:OPENAI_API_KEY]"


def test_a_last_line_streams_at_once_while_a_long_secret_is_known(
    tmp_path: Path, work: Path, monkeypatch: pytest.MonkeyPatch
):
    """The streamer held back the last max_len-1 characters of any output in case a secret
    began there: an agent that prints "agent ready" and then waits (for its model) showed
    nothing, and a cancel that waits for that line never came (seen as a CI hang)."""
    from igs_dagster.core.redact import Redactor

    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "0123456789abcdef" * 3)
    assert "agent ready" in _cancel_once_ready(tmp_path, work, timeout_s=60)
    # what is held back: only a tail that could be a secret's beginning
    redact = Redactor({"A_TOKEN": "secret-value-0123456789"})
    assert redact.split_safe("agent ready\n") == ("agent ready\n", "")
    assert redact.split_safe("key: secret-va") == ("key: ", "secret-va")
    assert redact.split_safe("key: secret-value-0123456789 and s") == (
        "key: [REDACTED:A_TOKEN] and ", "s")


def test_missing_executable_is_permanent(
    tmp_path: Path, work: Path, monkeypatch: pytest.MonkeyPatch
):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(PermanentError, match=r"agent 'pi' not found on PATH \('pi'\)") as info:
        run_agent("pi", "x", work, tmp_path / "out.log", timeout_s=5)
    assert "\n" not in str(info.value)
    with pytest.raises(PermanentError, match="not an executable file"):
        run_agent(
            "codex", "x", work, tmp_path / "out.log", timeout_s=5, argv=[str(empty / "codex")]
        )
    with pytest.raises(PermanentError, match="does not exist"):
        run_agent("pi", "x", tmp_path / "nowhere", tmp_path / "out.log", timeout_s=5, argv=["true"])


def test_threads_can_run_agents_concurrently(tmp_path: Path):
    agent = make_agent(tmp_path, "echo", "import sys\nprint(sys.stdin.read()[::-1])\n")
    results: dict[int, AgentResult] = {}

    def one(i: int) -> None:
        folder = tmp_path / f"w{i}"
        folder.mkdir()
        results[i] = run_agent(
            "pi", f"prompt-{i}", folder, folder / "out.log", timeout_s=60, argv=[str(agent)]
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        assert results[i].ok and f"prompt-{i}"[::-1] in results[i].tail
