"""Enrichment through the real pi, claude and codex binaries (npm, pinned in package-lock.json)
with our agent_runner and default command lines, against the scripted model server.

The server plays the model: it reads the note, researches, edits the note with the CLI's own
tools; our checks then accept or undo what the CLI really did to the file."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from igs_dagster.core import agent_runner, process_groups
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import AgentSettings
from igs_dagster.video import notes
from igs_dagster.video.enrich import SECTIONS, agent_enrich
from igs_dagster.video.enrich.agent import workspace_note
from igs_dagster.video.frontmatter import split_frontmatter
from igs_dagster_tests.agents import model_server as ms

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parents[1] / "fixtures" / "enrich"
PLACEHOLDER = "\n_Pending enrichment._\n\n"
STYLE = "STYLE-MARKER: short sentences, active voice, no jargon."
WATCH = "https://www.youtube.com/watch?v=jfkSample01"


def region(speaker_url: str) -> str:
    return f"""
The speaker urges citizens to serve their country. [John F. Kennedy]({speaker_url}) gave this
inaugural address in 1961 ([source]({speaker_url})).

## Key Points

- **[0:00]({WATCH}&t=0s)** Service over entitlement.

## Speaker Context

[John F. Kennedy]({speaker_url}), 35th president of the United States ([source]({speaker_url})).

## Notable Quotes

> "Ask not what your country can do for you, ask what you can do for your country." — [0:00]({WATCH}&t=0s)

## Related

- [Source video]({WATCH})
- [Speaker profile]({speaker_url})

## Tags

#civic-duty #inaugural-address

"""


@pytest.fixture
def note(jfk_note: Path) -> Path:
    return jfk_note


def research_turns(tool: str, server: ms.ModelServer) -> list[ms.Turn]:
    """The CLI's own web tools, called the way a model would."""
    if tool == "claude":  # named in --tools (issue 23), so offered at once, not deferred
        return [ms.call("WebFetch", {"url": f"{server.url}/speaker", "prompt": "Who is this?"})]
    if tool == "pi":  # the user's web-search extension (pi_extensions/web-search.ts)
        return [ms.call("web_search", {"query": "John F. Kennedy"})]
    return []  # codex's web_search runs on OpenAI's side: offered, not callable here


def style_skill(work: Path) -> Path:
    return work / "skills" / "writing-style" / "SKILL.md"


def test_enrichment_by_each_cli_edits_the_note_and_passes_the_checks(
    tool: str, note: Path, tmp_path: Path, server: ms.ModelServer
) -> None:
    style = tmp_path / "style.md"
    style.write_text(STYLE + "\n", encoding="utf-8")
    work = tmp_path / "work"
    speaker = f"{server.url}/speaker"
    server.pages["/speaker"] = "<html><body><h1>John F. Kennedy</h1></body></html>"
    server.pages["/search?q=John%20F.%20Kennedy"] = f"John F. Kennedy - {speaker}"
    before = note.read_text(encoding="utf-8")
    copy = str(workspace_note(work, note))  # the agent edits a copy in its workspace (issue 23)
    turns = [] if tool == "codex" else [ms.read(copy)]  # codex has no reader: the note is inline
    if tool == "pi":
        turns.append(ms.read(str(style_skill(work))))
    turns += research_turns(tool, server)
    turns += [ms.edit(copy, PLACEHOLDER.strip("\n"), region(speaker).strip("\n")),
              ms.text(f"enriched {note.name}")]
    server.play(turns)

    settings = AgentSettings(tool=tool, timeout_s=60, style_file=style)
    result = agent_enrich(note, tool, settings, work_dir=work)

    assert server.errors == []
    after = note.read_text(encoding="utf-8")
    assert split_frontmatter(after)[0]["enriched_by"] == tool
    assert notes.transcript_block(after) == notes.transcript_block(before)
    assert result.sections == list(SECTIONS)
    assert f"[John F. Kennedy]({speaker})" in after
    calls = server.model_requests()
    assert len(calls) == len(turns)
    first = calls[0]
    # The whole prompt arrived (stdin): note path, six sections, the research instructions.
    assert str(Path(copy).resolve()) in first.json_text()
    assert "Research on the web" in first.json_text()
    assert all(f"## {name}" in first.json_text() for name in SECTIONS)
    # The style reached the model: inline, or (pi) as a skill the model then read.
    if tool == "pi":
        assert "writing-style" in first.json_text() and STYLE not in first.json_text()
        assert STYLE in calls[2].json_text()  # the read of SKILL.md came back to the model
    else:
        assert STYLE in first.json_text()
    if tool == "codex":  # no file reader: the note came in the prompt, fenced as data
        assert "<<<UNTRUSTED NOTE" in first.json_text() and "ask not what" in first.json_text()
    # The edit tools and the web tools were offered, and nothing that runs commands (issue 23).
    offered = set(first.tool_names())
    expected = {
        "pi": {"read", "edit", "write", "web_search"},
        "claude": {"Read", "Edit", "Write"},
        "codex": {"apply_patch", "web_search"},
    }[tool]
    assert expected <= offered, offered
    assert not offered & {"bash", "Bash", "exec_command", "shell", "write_stdin"}, offered
    if tool == "claude":
        assert {"WebSearch", "WebFetch"} <= offered
        fetched = str(calls[2].body["messages"][-1]["content"])
        assert "haven't granted" not in fetched  # --allowedTools let it run in print mode
    if tool == "codex":
        web = next(t for t in first.body["tools"] if t.get("type") == "web_search")
        assert web["external_web_access"] is True
    if tool == "pi":
        assert "John F. Kennedy - http" in calls[3].json_text()


def test_research_off_takes_the_web_tools_away(
    tool: str, note: Path, tmp_path: Path, server: ms.ModelServer
) -> None:
    original = note.read_bytes()
    server.play([ms.text("nothing to do")])
    settings = AgentSettings(tool=tool, timeout_s=60, research=False)
    with pytest.raises(PermanentError, match="the note is unchanged; note restored"):
        agent_enrich(note, tool, settings, work_dir=tmp_path / "work")
    assert note.read_bytes() == original
    first = server.model_requests()[0]
    assert "Research on the web" not in first.json_text()
    assert "Do not search the web" in first.json_text()
    if tool == "claude":
        assert "WebSearch" not in first.json_text() and "WebFetch" not in first.json_text()
    if tool == "codex":
        assert not [t for t in first.body["tools"] if t.get("type") == "web_search"]
    if tool == "pi":  # the user's web extension too: pi_fence.ts leaves only the file tools
        assert first.tool_names() == ["read", "edit", "write"]


def test_pi_without_extension_discovery_has_no_web_search(
    note: Path, tmp_path: Path, server: ms.ModelServer, cli_env
) -> None:
    """Why the default pi command line lost --no-extensions: it removes the web tool."""
    cli_env("pi")
    server.play([ms.text("nothing to do")])
    command = [*agent_runner.DEFAULT_COMMANDS["pi"], "--no-extensions"]
    result = agent_runner.run_agent(
        "pi", "say hi", tmp_path, tmp_path / "out.log", timeout_s=60, argv=command
    )
    assert result.ok
    assert server.model_requests()[0].tool_names() == ["read", "bash", "edit", "write"]


BREAKS = {
    # tool -> (what its edit breaks, reason in the error)
    "pi": (("title: ", "title: [", "frontmatter broken")),
    "claude": (("ask not what", "ask now what", "transcript block changed")),
    "codex": (PLACEHOLDER.strip("\n"), "misquote", "quote not in the transcript"),
}


def test_a_breaking_edit_is_restored_byte_for_byte(
    tool: str, note: Path, tmp_path: Path, server: ms.ModelServer
) -> None:
    original = note.read_bytes()
    old, new, reason = BREAKS[tool]
    if new == "misquote":
        new = region(f"{server.url}/speaker").replace("Ask not", "Never ask").strip("\n")
    server.play([ms.edit(str(workspace_note(tmp_path / "w", note)), old, new), ms.text("done")])
    with pytest.raises(PermanentError, match=reason):
        agent_enrich(note, tool, AgentSettings(tool=tool, timeout_s=60), work_dir=tmp_path / "w")
    assert server.errors == []
    assert note.read_bytes() == original
    assert len(server.model_requests()) == 2  # the CLI really made the edit (then we undid it)


_CMDLINES: dict[int, str] = {}


def _cmdline(pid: int, seen: dict[int, float | None]) -> str:
    return _CMDLINES.get(pid, "")


def _tree(pid: int) -> list[int]:
    """The agent and every descendant (its group and whatever left it: pi's setsid bash)."""
    import psutil

    try:
        leader = psutil.Process(pid)
        return [pid, *(p.pid for p in leader.children(recursive=True))]
    except psutil.Error:
        return []


def _alive(pid: int, start: float | None) -> bool:
    """Still running, and the same process (same start time), as the kernel says."""
    info = process_groups.process_info(pid)
    return info is not None and not info.exited and (start is None or info.started_at == start)


HANGS = {
    # pi: its bash tool (spawned detached, in a session of its own) runs a command that never
    # ends; claude: the server never answers; codex: a command leaves a background process,
    # then the stream stalls after its first event.
    "pi": [ms.bash("sleep 321")],
    "claude": [ms.hang()],
    "codex": [ms.bash("sleep 321 >/dev/null 2>&1 &"), ms.stall()],
}


def test_a_hanging_cli_is_killed_with_its_whole_process_tree(
    tool: str, note: Path, tmp_path: Path, server: ms.ModelServer
) -> None:
    original = note.read_bytes()
    server.play(HANGS[tool], default=ms.hang())
    pid_file = tmp_path / "agent.pid"
    seen: dict[int, float | None] = {}
    done = threading.Event()

    def watch() -> None:  # every process of the agent's group, while it runs
        while not done.is_set():
            data = process_groups.read_pid_file(pid_file)
            if data:  # from the guard down: an orphan (codex's `&`) is reparented to it
                for pid in _tree(int(data.get("guard_pid") or data["pid"])):
                    if pid not in seen:
                        seen[pid] = process_groups.start_time(pid)
                        with contextlib.suppress(OSError):
                            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                            _CMDLINES[pid] = raw.replace(b"\0", b" ").decode(errors="replace")
            done.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:  # the loop's command lines (an enrichment has no shell to spawn with: issue 23)
        result = agent_runner.run_agent(
            tool, "go", note.parent, tmp_path / "w" / "out.log", timeout_s=6,
            argv=agent_runner.agent_command(tool), pid_file=pid_file,
        )
        assert result.timed_out
    finally:
        done.set()
        watcher.join()
    assert server.model_requests(), "the CLI never reached the model"
    assert len(server.model_requests()) == len(HANGS[tool])
    if tool != "claude":  # the command's process was part of the tree
        assert [pid for pid in seen if "sleep 321" in _cmdline(pid, seen)], seen
    assert not [pid for pid, start in seen.items() if _alive(pid, start)]
    assert note.read_bytes() == original
    assert not pid_file.exists()


def test_a_hanging_enrichment_times_out_and_leaves_the_note(
    tool: str, note: Path, tmp_path: Path, server: ms.ModelServer
) -> None:
    original = note.read_bytes()
    server.play([ms.hang()], default=ms.hang())
    with pytest.raises(RuntimeError, match=rf"agent {tool} timed out after 6s.*note restored"):
        agent_enrich(note, tool, AgentSettings(tool=tool, timeout_s=6), work_dir=tmp_path / "w")
    assert note.read_bytes() == original


def test_a_200_kb_prompt_arrives_whole_through_stdin(
    tool: str, tmp_path: Path, server: ms.ModelServer
) -> None:
    words = "ask not what your country can do for you " * 5000
    prompt = f"BEGIN-PROMPT {words} END-PROMPT"
    assert len(prompt.encode()) > 200_000 > 131_072  # Linux MAX_ARG_STRLEN: not one argv string
    server.play([ms.text("read it")])
    result = agent_runner.run_agent(
        tool, prompt, tmp_path, tmp_path / "out.log", timeout_s=60,
        argv=agent_runner.agent_command(tool),
    )
    assert result.ok, result.tail
    first = server.model_requests()[0]
    assert prompt in first.json_text()
    assert "read it" in (tmp_path / "out.log").read_text()
