"""Search at scale: 1,000 notes of 30 minutes of generated speech (~4,300 words each).

Measured: p50/p95 query latency of hybrid search in a warm process (text, semantic and
hybrid), index size per hour of transcript, and indexing time per hour (passages, MiniLM
vectors, SQLite) against tiny.en's transcription time (RTF 0.063 here, facts-measured.md).

Encoding 500 hours of text with MiniLM on 2 cores would take about an hour, so the indexing
rate is measured on SAMPLE_HOURS of real encoding, and the 1,000-note index reuses those real
vectors (cycled) for the other notes: query latency depends on the number of rows, not on
their values. `python -m bench.search_scale [notes]`.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.search_eval_data import FILLER, QUERIES, TOPICS
from igs_dagster.video.search.embed import MODEL_NAME, encoder
from igs_dagster.video.search.index import NoteDoc, SearchIndex, digest_of
from igs_dagster.video.search.passages import passages
from igs_dagster.video.search.query import search

WPM = 145
MINUTES = 30
SAMPLE_HOURS = 1.0
WHISPER_RTF = 0.063


def _vocabulary() -> list[str]:
    words = []
    for _, sentences in TOPICS.values():
        for s in sentences:
            words += s.lower().rstrip(".").split()
    return words


def generated_talk(rng: random.Random, vocab: list[str], minutes: int = MINUTES) -> list[dict]:
    """Varied sentences (random 8-20 words from the topics' vocabulary, some filler)."""
    segments, t, total = [], 0.0, 0
    while total < WPM * minutes:
        if rng.random() < 0.15:
            text = rng.choice(FILLER)
        else:
            text = " ".join(rng.choice(vocab) for _ in range(rng.randint(8, 20))).capitalize() + "."
        n = len(text.split())
        dur = n * 60 / WPM
        segments.append({"start": round(t, 2), "end": round(t + dur, 2), "text": text})
        t += dur
        total += n
    return segments


def main(notes: int = 1000) -> dict:
    rng = random.Random(13)
    vocab = _vocabulary()
    enc = encoder()
    out: dict = {"notes": notes, "minutes_each": MINUTES}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # indexing rate: real passages + real MiniLM + SQLite, SAMPLE_HOURS of speech
        sample_talks = int(SAMPLE_HOURS * 60 / MINUTES)
        t0 = time.perf_counter()
        pool: list[np.ndarray] = []
        with SearchIndex(tmp / "rate.sqlite3") as index:
            for i in range(sample_talks):
                segs = generated_talk(rng, vocab)
                parts = passages(segs)
                vecs = enc.encode([p.text for p in parts])
                pool.append(vecs)
                doc = NoteDoc(f"s{i}", f"s{i}", f"Sample {i}", str(tmp / "x.md"))
                index.upsert(doc, parts, vecs, digest_of(doc, parts, MODEL_NAME))
        index_s_per_hour = (time.perf_counter() - t0) / SAMPLE_HOURS
        out["index_s_per_hour"] = round(index_s_per_hour, 1)
        out["transcribe_s_per_hour"] = round(3600 * WHISPER_RTF, 1)
        out["index_pct_of_transcription"] = round(100 * index_s_per_hour / (3600 * WHISPER_RTF), 1)
        pool_vecs = np.concatenate(pool)

        # the big index: real passages and FTS, vectors cycled from the real pool
        path = tmp / "big.sqlite3"
        (tmp / "x.md").write_text("x")
        t0 = time.perf_counter()
        offset = 0
        with SearchIndex(path) as index:
            for i in range(notes):
                parts = passages(generated_talk(rng, vocab))
                idx = (np.arange(len(parts)) + offset) % len(pool_vecs)
                offset += len(parts)
                doc = NoteDoc(f"n{i}", f"n{i}", f"Talk {i}", str(tmp / "x.md"),
                              channel=f"channel {i % 7}", day=f"2026-01-{i % 28 + 1:02d}")
                index.upsert(doc, parts, pool_vecs[idx], digest_of(doc, parts, MODEL_NAME))
            index.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            out["build_s_without_encoding"] = round(time.perf_counter() - t0, 1)
            stats = index.stats()
            hours = notes * MINUTES / 60
            out["passages"] = stats["passages"]
            out["index_mb"] = round(path.stat().st_size / 1e6, 1)
            out["index_mb_per_hour"] = round(path.stat().st_size / 1e6 / hours, 3)
            t0 = time.perf_counter()
            index.matrix()
            out["vector_load_s"] = round(time.perf_counter() - t0, 2)
            for mode in ("text", "semantic", "hybrid"):
                times = []
                for query, _, _ in QUERIES:
                    t0 = time.perf_counter()
                    search(index, query, n=10, mode=mode, encoder=enc)
                    times.append(1000 * (time.perf_counter() - t0))
                times.sort()
                out[f"{mode}_p50_ms"] = round(statistics.median(times), 1)
                out[f"{mode}_p95_ms"] = round(times[int(0.95 * (len(times) - 1))], 1)
    return out


if __name__ == "__main__":
    json.dump(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000), sys.stdout, indent=1)
    print()
