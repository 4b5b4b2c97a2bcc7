"""Every writer of a note keeps what the others own (issue 24, items 1 and 3).

- Re-summarizing (`igs summarize`: a run of `enriched_summary` alone) must not drop the
  screenshots and related blocks that other steps put into the note: the enrichers write only
  their sections. A property test runs any sequence of summarize / screenshots / related runs.
- The writers (vault note render, daily link, both enrichers, the block steps) take one lock per
  note, kept beside the note in the vault, so processes that do not share a temp folder (two
  containers, two hosts on one vault) still see each other: parallel writer processes lose
  nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igs_dagster.core.settings import AgentSettings
from igs_dagster.video import noteblocks, notes
from igs_dagster.video.enrich import agent_enrich, builtin_enrich
from igs_dagster.video.frontmatter import split_frontmatter

FIXTURES = Path(__file__).parent / "fixtures" / "enrich"
JFK_ID = "jfkSample01"
SHOTS = "## Screenshots\n\n- **0:03** my fellow Americans\n  ![[Attachments/shot-3.jpg|480]]\n"
RELATED = "## Related in the vault\n\n- [[moon-speech|We choose to go to the Moon]]\n"


def _url(seconds: int) -> str:
    return f"https://www.youtube.com/watch?v={JFK_ID}&t={seconds}s"


def _jfk_note(folder: Path) -> Path:
    videos = folder / "vault" / "Resources" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    note = videos / "jfk-inaugural-address-excerpt.md"
    shutil.copyfile(FIXTURES / "jfk_note.md", note)
    return note


def _transcript() -> dict:
    return json.loads((FIXTURES / "jfk_transcript.json").read_text(encoding="utf-8"))


def _meta() -> dict:
    return json.loads((FIXTURES / "jfk_meta.json").read_text(encoding="utf-8"))


def _note_input() -> notes.NoteInput:
    meta = _meta()
    return notes.NoteInput(
        video_id=JFK_ID, title=meta["title"], source_label="youtube", source_url=meta["source_url"],
        channel=meta["channel"], published=meta["upload_date"], duration=11.0,
        archive_path=None, transcribed="2026-11-24", tags=["video", "youtube"], timestamp_url=_url,
    )


def _render(vault: Path) -> Path:
    """What the vault_note step does: render the note (again), keeping its region."""
    return notes.write_note(vault, "jfk-inaugural-address-excerpt", _note_input(), _transcript())


def _summarize(note: Path) -> None:
    builtin_enrich(note, _transcript(), _meta(), timestamp_url=_url)


def _blocks(text: str) -> dict[str, int]:
    return {name: text.count(f"<!-- igs:{name} -->") for name in noteblocks.ORDER}


# --------------------------------------------------------------------------- item 1


def test_resummarizing_keeps_the_screenshots_and_related_blocks(tmp_path: Path) -> None:
    """What `igs summarize` does on a finished note: only the enricher runs again."""
    note = _jfk_note(tmp_path)
    _summarize(note)
    noteblocks.update_note_block(note, "screenshots", SHOTS)
    noteblocks.update_note_block(note, "related", RELATED)
    before = note.read_text(encoding="utf-8")

    _summarize(note)  # re-summarize: the same bytes, blocks and all
    assert note.read_text(encoding="utf-8") == before
    # a summary that changes (here: the note was never enriched) keeps the blocks too
    fresh = _jfk_note(tmp_path / "fresh")
    noteblocks.update_note_block(fresh, "screenshots", SHOTS)
    noteblocks.update_note_block(fresh, "related", RELATED)
    _summarize(fresh)
    text = fresh.read_text(encoding="utf-8")
    assert noteblocks.get_block(text, "screenshots") == SHOTS
    assert noteblocks.get_block(text, "related") == RELATED
    assert text.index("## Tags") < text.index("igs:screenshots") < text.index("igs:related")


AGENT = f"""#!{sys.executable}
import pathlib, re, sys
prompt = sys.stdin.read()
# the copy of the note in the agent's workspace, as the prompt names it (issue 23)
note = pathlib.Path(re.search(r"Note to edit: `([^`]+)`", prompt).group(1))
text = note.read_text()
# an agent that rewrites the whole region and drops whatever else was there
head, marker, tail = text.partition("<!-- igs:transcript -->")
start = head.index("## Executive Summary")
region = (
    "## Executive Summary\\n\\nMy fellow Americans ask not what your country can do for you.\\n\\n"
    "## Key Points\\n\\n- **[0:00](https://www.youtube.com/watch?v=jfkSample01&t=0s)** Ask not.\\n\\n"
    "## Speaker Context\\n\\n- John F. Kennedy\\n\\n"
    "## Notable Quotes\\n\\n> \\"ask what you can do for your country\\" — "
    "[0:08](https://www.youtube.com/watch?v=jfkSample01&t=8s)\\n\\n"
    "## Related\\n\\n- [Source](https://www.youtube.com/watch?v=jfkSample01)\\n\\n"
    "## Tags\\n\\n#country\\n\\n"
)
note.write_text(head[:start] + region + marker + tail)
"""


def test_agent_enrichment_keeps_the_blocks_it_dropped(tmp_path: Path) -> None:
    note = _jfk_note(tmp_path)
    noteblocks.update_note_block(note, "screenshots", SHOTS)
    noteblocks.update_note_block(note, "related", RELATED)
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    agent.chmod(0o755)
    transcript_before = notes.transcript_block(note.read_text(encoding="utf-8"))
    agent_enrich(note, "pi", AgentSettings(timeout_s=60), work_dir=tmp_path / "work",
                 argv=[str(agent)])
    text = note.read_text(encoding="utf-8")
    assert "ask what you can do for your country" in text  # the agent's edit was kept
    assert noteblocks.get_block(text, "screenshots") == SHOTS
    assert noteblocks.get_block(text, "related") == RELATED
    assert notes.transcript_block(text) == transcript_before


STEPS = st.lists(st.sampled_from(["summarize", "screenshots", "related", "screenshots-none",
                                  "render"]), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_any_order_of_reruns_keeps_each_block_once(tmp_path_factory, steps: list[str]) -> None:
    """summarize / screenshots / related / the note's re-render in any order: each block that
    was written is present exactly once with its last body, the transcript byte-identical."""
    vault = tmp_path_factory.mktemp("order") / "vault"
    note = _render(vault)
    transcript = notes.transcript_block(note.read_text(encoding="utf-8"))
    expected: dict[str, str | None] = {"screenshots": None, "related": None}
    for number, step in enumerate(steps):
        if step == "summarize":
            _summarize(note)
        elif step == "render":  # vault_note again: keeps the region as it is
            _render(vault)
        elif step == "screenshots-none":
            noteblocks.update_note_block(note, "screenshots", None)
            expected["screenshots"] = None
        else:
            body = (SHOTS if step == "screenshots" else RELATED) + f"\n<!-- run {number} -->\n"
            noteblocks.update_note_block(note, step, body)
            expected[step] = body
        text = note.read_text(encoding="utf-8")
        assert notes.transcript_block(text) == transcript
        for name, body in expected.items():
            assert _blocks(text)[name] == (0 if body is None else 1), (steps, name)
            assert noteblocks.get_block(text, name) == body, (steps, name)


# --------------------------------------------------------------------------- item 3

WRITER = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from igs_dagster_tests import test_note_writers as t
from igs_dagster.core.settings import AgentSettings
from igs_dagster.video import noteblocks
from igs_dagster.video.daily import link_daily
from igs_dagster.video.enrich import agent_enrich

role, vault, rounds, agent = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
note = vault / "Resources" / "videos" / "jfk-inaugural-address-excerpt.md"
for i in range(rounds):
    if role == "summarize":
        t._summarize(note)
    elif role == "render":
        t._render(vault)
    elif role in ("screenshots", "related"):
        body = (t.SHOTS if role == "screenshots" else t.RELATED) + f"<!-- {{role}} {{i}} -->\\n"
        noteblocks.update_note_block(note, role, body)
    elif role == "daily":
        link_daily(vault, "2026-11-24", f"talk-{{i}}", f"Talk {{i}}", None, 60)
    elif role == "agent":  # an agent that fails after editing: the note is restored
        try:
            agent_enrich(note, "pi", AgentSettings(timeout_s=60), work_dir=vault.parent / "work",
                         argv=[sys.executable, agent, str(note)])
        except RuntimeError:
            pass
"""

FAILING_AGENT = """\
import pathlib, sys, time
sys.stdin.read()
note = pathlib.Path(sys.argv[1])
note.write_text(note.read_text().replace("## Executive Summary", "## Executive Summary\\n\\nHALF"))
time.sleep(0.05)
sys.exit(1)
"""


def test_parallel_writers_in_separate_processes_lose_nothing(tmp_path: Path) -> None:
    """Six writer processes on one note and one daily note, each with its own temp folder (as
    two containers or two hosts sharing the vault would have): every last write survives."""
    vault = tmp_path / "vault"
    note = _render(vault)
    transcript = notes.transcript_block(note.read_text(encoding="utf-8"))
    agent = tmp_path / "failing_agent.py"
    agent.write_text(FAILING_AGENT)
    rounds = 25
    script = WRITER.format(tests=str(Path(__file__).resolve().parent.parent))
    procs = []
    for role in ("summarize", "render", "screenshots", "related", "daily", "agent"):
        own_tmp = tmp_path / f"tmp-{role}"
        own_tmp.mkdir()
        env = {**os.environ, "TMPDIR": str(own_tmp)}
        procs.append(subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", script, role, str(vault), str(rounds if role != "agent" else 8),
             str(agent)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
    text = note.read_text(encoding="utf-8")
    last = rounds - 1
    assert noteblocks.get_block(text, "screenshots") == SHOTS + f"<!-- screenshots {last} -->\n"
    assert noteblocks.get_block(text, "related") == RELATED + f"<!-- related {last} -->\n"
    assert "HALF" not in text and "## Key Points" not in text or "## Tags" in text
    assert split_frontmatter(text)[0]["enriched_by"] == "builtin"
    assert notes.transcript_block(text) == transcript
    daily = (vault / "Daily" / "2026-11-24.md").read_text(encoding="utf-8")
    assert [f"[[talk-{i}]]" in daily for i in range(rounds)] == [True] * rounds
    leftovers = [p.name for p in vault.rglob("*") if p.name.startswith(".igs-tmp-")]
    assert leftovers == []
