"""Search at scale: 1,000 notes of 30 minutes of generated speech (~4,300 words each).

Measured: p50/p95 query latency in a warm process (text, semantic and hybrid; wall and CPU
seconds of the process, all threads), index size per hour of transcript (the SQLite file and
the vector file beside it), indexing time per hour (passages, MiniLM vectors, SQLite) against
tiny.en's transcription of that hour, and `igs search` end to end in a fresh process.

CPU seconds are the comparable figure on a shared machine: tiny.en costs 0.065 CPU-s per
audio second here (figure 11), so an hour of transcript is 234 CPU-s of transcription. The
wall figures are given with the load average next to them.

Encoding 500 hours of text with MiniLM on 2 cores would take most of an hour, so the indexing
rate is measured on SAMPLE_HOURS of real encoding, and the 1,000-note index reuses those real
vectors (cycled) for the other notes: query latency depends on the number of rows, not on
their values. `python -m bench.search_scale [notes]`; figure 12 of `python -m bench`.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
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
WHISPER_RTF = 0.063  # wall seconds per audio second (facts-measured.md)
WHISPER_CPU_PER_S = 0.065  # CPU seconds per audio second, tiny.en int8 (figure 11)
CLI_QUERY = "what you can do for your country"


def _vocabulary() -> list[str]:
    words = []
    for _, sentences in TOPICS.values():
        for s in sentences:
            words += s.lower().rstrip(".").split()
    return words


def generated_talk(rng: random.Random, vocab: list[str], minutes: float = MINUTES) -> list[dict]:
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


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[int(q * (len(values) - 1))], 1)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_runs(data_dir: Path, vault: Path, runs: int, mode: str = "hybrid") -> list[tuple[float, float]]:
    """(wall s, CPU s) of `igs search` in a fresh process, `runs` times."""
    env = {**os.environ, "IGS_DATA_DIR": str(data_dir), "IGS_VAULT_DIR": str(vault)}
    out = []
    for _ in range(runs):
        cpu0, t0 = _children_cpu(), time.perf_counter()
        subprocess.run([sys.executable, "-m", "igs_dagster.cli", "search", "--mode", mode,
                        CLI_QUERY], env=env, check=True, capture_output=True, timeout=300)
        out.append((time.perf_counter() - t0, _children_cpu() - cpu0))
    return out


def main(notes: int = 1000, minutes: float = MINUTES, sample_hours: float = SAMPLE_HOURS,
         cli: int = 3, rounds: int = 3) -> dict:
    """`rounds` passes over the 38 queries per mode (a p95 of 38 values is their second worst)."""
    rng = random.Random(13)
    vocab = _vocabulary()
    enc = encoder()
    out: dict = {"notes": notes, "minutes_each": minutes, "load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # indexing rate: real passages + real MiniLM + SQLite, sample_hours of speech
        sample_talks = max(1, round(sample_hours * 60 / minutes))
        hours = sample_talks * minutes / 60
        pool: list[np.ndarray] = []
        talks = [generated_talk(rng, vocab, minutes) for _ in range(sample_talks)]
        t0, c0 = time.perf_counter(), time.process_time()
        with SearchIndex(tmp / "rate.sqlite3") as index:
            for i, segs in enumerate(talks):
                parts = passages(segs)
                vecs = enc.encode([p.text for p in parts])
                pool.append(vecs)
                doc = NoteDoc(f"s{i}", f"s{i}", f"Sample {i}", str(tmp / "x.md"))
                index.upsert(doc, parts, vecs, digest_of(doc, parts, MODEL_NAME))
        wall_per_hour = (time.perf_counter() - t0) / hours
        cpu_per_hour = (time.process_time() - c0) / hours
        out["index_s_per_hour"] = round(wall_per_hour, 2)
        out["index_cpu_s_per_hour"] = round(cpu_per_hour, 2)
        out["transcribe_s_per_hour"] = round(3600 * WHISPER_RTF, 1)
        out["transcribe_cpu_s_per_hour"] = round(3600 * WHISPER_CPU_PER_S, 1)
        out["index_pct_of_transcription"] = round(100 * wall_per_hour / (3600 * WHISPER_RTF), 2)
        out["index_cpu_pct_of_transcription"] = round(
            100 * cpu_per_hour / (3600 * WHISPER_CPU_PER_S), 2)
        pool_vecs = np.concatenate(pool)

        # the big index: real passages and FTS, vectors cycled from the real pool
        data, vault = tmp / "data", tmp / "vault"
        data.mkdir()
        vault.mkdir()
        note = vault / "x.md"
        note.write_text("x")
        path = data / "search.sqlite3"
        t0 = time.perf_counter()
        offset = 0
        with SearchIndex(path) as index:
            for i in range(notes):
                parts = passages(generated_talk(rng, vocab, minutes))
                idx = (np.arange(len(parts)) + offset) % len(pool_vecs)
                offset += len(parts)
                doc = NoteDoc(f"n{i}", f"n{i}", f"Talk {i}", str(note),
                              channel=f"channel {i % 7}", day=f"2026-01-{i % 28 + 1:02d}")
                index.upsert(doc, parts, pool_vecs[idx], digest_of(doc, parts, MODEL_NAME))
            index.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            out["build_s_without_encoding"] = round(time.perf_counter() - t0, 1)
            out["passages"] = index.stats()["passages"]
            t0 = time.perf_counter()
            index.matrix()  # builds the vector file beside the index
            out["vector_build_s"] = round(time.perf_counter() - t0, 2)
            total_hours = notes * minutes / 60
            sqlite_mb = path.stat().st_size / 1e6
            vectors_mb = sum(f.stat().st_size for f in data.glob("search.sqlite3-vectors-*")) / 1e6
            out["index_mb"] = round(sqlite_mb + vectors_mb, 1)
            out["index_sqlite_mb"] = round(sqlite_mb, 1)
            out["index_vectors_mb"] = round(vectors_mb, 1)
            out["index_mb_per_hour"] = round((sqlite_mb + vectors_mb) / total_hours, 3)
        with SearchIndex(path) as index:  # as a fresh process would: vectors mapped from file
            t0 = time.perf_counter()
            index.matrix()
            out["vector_load_s"] = round(time.perf_counter() - t0, 3)
            for mode in ("text", "semantic", "hybrid"):
                walls, cpus = [], []
                for query, _, _ in QUERIES * rounds:
                    t0, c0 = time.perf_counter(), time.process_time()
                    search(index, query, n=10, mode=mode, encoder=enc)
                    walls.append(1000 * (time.perf_counter() - t0))
                    cpus.append(1000 * (time.process_time() - c0))
                out[f"{mode}_p50_ms"] = round(statistics.median(walls), 1)
                out[f"{mode}_p95_ms"] = _p(walls, 0.95)
                out[f"{mode}_cpu_p95_ms"] = _p(cpus, 0.95)
        if cli:
            for mode in ("text", "hybrid"):
                runs = cli_runs(data, vault, cli, mode)
                out[f"cli_{mode}_wall_s"] = round(statistics.median(w for w, _ in runs), 2)
                out[f"cli_{mode}_cpu_s"] = round(statistics.median(c for _, c in runs), 2)
    out["load_average_at_end"] = os.getloadavg()
    return out


if __name__ == "__main__":
    json.dump(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000), sys.stdout, indent=1)
    print()
