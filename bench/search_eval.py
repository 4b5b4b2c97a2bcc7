"""Search quality: recall@5 and MRR of full-text, semantic and hybrid ranking on the held-out
set in search_eval_data.py (real FTS5, real MiniLM). `python -m bench.search_eval`."""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

from bench.search_eval_data import FILLER, QUERIES, TOPICS
from igs_dagster.video.search.index import NoteDoc, SearchIndex
from igs_dagster.video.search.indexer import index_note
from igs_dagster.video.search.query import search


def talk_segments(topic: str, seed: int) -> list[dict]:
    """The topic's sentences in order, 1-2 filler sentences between them, ~5 s each."""
    rng = random.Random(seed)
    _, sentences = TOPICS[topic]
    texts: list[str] = rng.sample(FILLER, 2)
    for sentence in sentences:
        texts.append(sentence)
        texts += rng.sample(FILLER, rng.choice((1, 2)))
    segments, t = [], 0.0
    for text in texts:
        dur = 0.4 * len(text.split())
        segments.append({"start": round(t, 2), "end": round(t + dur, 2), "text": text})
        t += dur + 0.3
    return segments


def build(index: SearchIndex, vault: Path, encoder=None) -> None:
    for seed, (topic, (title, _)) in enumerate(TOPICS.items()):
        path = vault / f"{topic}.md"
        path.write_text("note\n")
        doc = NoteDoc(video_id=topic, slug=topic, title=title, note_path=str(path))
        index_note(index, doc, talk_segments(topic, seed), encoder)


def evaluate(index: SearchIndex, mode: str, encoder=None, k: int = 5) -> dict:
    hits_at_k, rr = 0, 0.0
    for query, topic, idx in QUERIES:
        target = TOPICS[topic][1][idx]
        results = search(index, query, n=20, mode=mode, encoder=encoder)
        rank = next((r for r, h in enumerate(results, 1)
                     if h.video_id == topic and target in h.text), None)
        if rank is not None:
            rr += 1.0 / rank
            hits_at_k += rank <= k
    n = len(QUERIES)
    return {"mode": mode, "queries": n, f"recall@{k}": round(hits_at_k / n, 3),
            "mrr": round(rr / n, 3)}


def main() -> list[dict]:
    from igs_dagster.video.search.embed import encoder

    enc = encoder()
    with tempfile.TemporaryDirectory() as tmp:
        with SearchIndex(Path(tmp) / "s.sqlite3") as index:
            build(index, Path(tmp), enc)
            return [evaluate(index, m, enc) for m in ("text", "semantic", "hybrid")]


if __name__ == "__main__":
    rows = main()
    json.dump(rows, sys.stdout, indent=1)
    print()
