"""Enrich a video note: summary, key points, speaker context, quotes, links and tags.

Two enrichers fill the note's enrichment region (between the `## Executive Summary` heading
line and `<!-- igs:transcript -->`):

- `builtin_enrich` (builtin.py): offline and deterministic; TextRank-ranked transcript
  sentences (text.py) make the summary, key points and quotes, the video's metadata the
  speaker context and links (metadata.py), keyphrases the tags (keyphrases.py). Key points
  and quotes are left out when the summary already is the whole transcript (a short clip).
- `agent_enrich` (agent.py): an AI agent CLI (pi, claude, codex) edits the note in place from
  `prompt.md`; `check_enriched` then accepts the edit or the original bytes are restored.

Both keep the frontmatter (only `enriched_by` and `tags` change) and the transcript block
byte-identical (noteedit.py), and write atomically.
"""

from igs_dagster.video.enrich.agent import (
    AGENT_LOG_NAME,
    PROMPT_FILE,
    STYLE_MAX_CHARS,
    agent_enrich,
    build_prompt,
    check_enriched,
)
from igs_dagster.video.enrich.builtin import BUILTIN_METHOD, METHOD_NOTE, builtin_enrich
from igs_dagster.video.enrich.noteedit import (
    PREVIEW_MAX,
    SECTIONS,
    SUMMARY_HEADING,
    TRANSCRIPT_MARKER,
)
from igs_dagster.video.enrich.result import EnrichResult
from igs_dagster.video.enrich.text import STOPWORDS

__all__ = [
    "AGENT_LOG_NAME",
    "BUILTIN_METHOD",
    "METHOD_NOTE",
    "PREVIEW_MAX",
    "PROMPT_FILE",
    "SECTIONS",
    "STOPWORDS",
    "STYLE_MAX_CHARS",
    "SUMMARY_HEADING",
    "TRANSCRIPT_MARKER",
    "EnrichResult",
    "agent_enrich",
    "build_prompt",
    "builtin_enrich",
    "check_enriched",
]
