"""Ranking: FTS5 BM25 (words) and MiniLM cosine similarity (meaning), fused by reciprocal rank.

Reciprocal rank fusion (score = sum of 1 / (60 + rank) over the two lists) needs no score
calibration between BM25 and cosine values, and a passage found by both ranks first.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

import numpy as np

from igs_dagster.core.errors import PermanentError
from igs_dagster.video.search.embed import one_blas_thread
from igs_dagster.video.search.index import SearchIndex

MODES = ("hybrid", "text", "semantic")
RRF_K = 60
CANDIDATES = 50  # from each ranker
_WORD = re.compile(r"\w+", re.UNICODE)
_QUIET = frozenset(
    "a an and are as at be but by can do for from has have how i if in is it its of on or our "
    "so that the their them they this to was we what when where which who why will with you "
    "your".split()
)


@dataclass
class Hit:
    passage_id: int
    video_id: str
    slug: str
    title: str
    channel: str | None
    day: str | None
    source_url: str | None
    start: float | None
    text: str
    score: float
    text_rank: int | None = None
    semantic_rank: int | None = None
    similarity: float | None = None
    passage_start: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


def query_terms(query: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(query)]


def fts_expression(query: str) -> str | None:
    """Each word quoted (no FTS5 operators from user input), any word may match. Common words
    are left out when the query has others: they add little to BM25 and, at 70,000 passages,
    matching every passage with "the" made the query 4x slower."""
    terms = query_terms(query)
    terms = [t for t in terms if t not in _QUIET] or terms
    return " OR ".join(f'"{t}"' for t in dict.fromkeys(terms)) if terms else None


def _filters(since: str | None, channel: str | None) -> tuple[str, list]:
    sql, params = "", []
    if since:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", since):
            raise PermanentError(f"--since wants a date YYYY-MM-DD, not {since!r}")
        sql += " AND n.day >= ?"
        params.append(since)
    if channel:
        sql += " AND lower(n.channel) LIKE ?"
        params.append("%" + channel.lower().replace("%", "").replace("_", "") + "%")
    return sql, params


def text_ranking(index: SearchIndex, query: str, since=None, channel=None,
                 limit: int = CANDIDATES) -> list[int]:
    expr = fts_expression(query)
    if not expr:
        return []
    where, params = _filters(since, channel)
    if not where:  # the joins cost 2-3x the ranking itself (done for every match, then sorted)
        rows = index.execute(
            "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ? "
            "ORDER BY bm25(passages_fts) LIMIT ?", [expr, limit])
        return [r[0] for r in rows]
    rows = index.execute(
        "SELECT p.id FROM passages_fts f JOIN passages p ON p.id = f.rowid "
        "JOIN notes n ON n.video_id = p.video_id "
        f"WHERE passages_fts MATCH ?{where} ORDER BY bm25(passages_fts) LIMIT ?",
        [expr, *params, limit],
    )
    return [r[0] for r in rows]


def semantic_ranking(index: SearchIndex, query_vec: np.ndarray, since=None, channel=None,
                     limit: int = CANDIDATES) -> list[tuple[int, float]]:
    pid, mat, owners = index.matrix()
    if not len(pid):
        return []
    # one thread: a second one saves ~4 ms of wall at 70,000 rows but then spins through the
    # query's other work (hybrid p50 48 -> 29 CPU-ms, same p95 wall)
    with one_blas_thread():
        sims = mat @ query_vec.astype(np.float32)
    if since or channel:
        where, params = _filters(since, channel)
        keep = {r[0] for r in index.execute(f"SELECT n.video_id FROM notes n WHERE 1=1{where}", params)}
        mask = np.fromiter((o in keep for o in owners), dtype=bool, count=len(owners))
        sims = np.where(mask, sims, -np.inf)
    k = min(limit, len(sims))
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top])]
    return [(int(pid[i]), float(sims[i])) for i in top if np.isfinite(sims[i])]


def fuse(*rankings: list[int], k: int = RRF_K) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking, 1):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + rank)
    return scores


def search(index: SearchIndex, query: str, *, n: int = 10, mode: str = "hybrid",
           since: str | None = None, channel: str | None = None, encoder=None) -> list[Hit]:
    """The best `n` passages for `query`; `encoder` (embed.Encoder) is needed unless mode=text."""
    if mode not in MODES:
        raise PermanentError(f"unknown search mode {mode!r} (one of {', '.join(MODES)})")
    if not query.strip():
        raise PermanentError("empty query")
    text = text_ranking(index, query, since, channel) if mode != "semantic" else []
    sem: list[tuple[int, float]] = []
    if mode != "text":
        if encoder is None:
            from igs_dagster.video.search.embed import encoder as default_encoder

            encoder = default_encoder()
        sem = semantic_ranking(index, encoder.encode([query])[0], since, channel)
    sem_ids = [pid for pid, _ in sem]
    scores = fuse(text, sem_ids)
    best = sorted(scores, key=lambda pid: -scores[pid])[:n]
    if not best:
        return []
    text_rank = {pid: r for r, pid in enumerate(text, 1)}
    sem_rank = {pid: r for r, pid in enumerate(sem_ids, 1)}
    sim = dict(sem)
    marks = ",".join("?" * len(best))
    rows = {r[0]: r for r in index.execute(
        "SELECT p.id, p.video_id, n.slug, n.title, n.channel, n.day, n.source_url, p.start, "
        "p.text, p.anchors FROM passages p JOIN notes n ON n.video_id = p.video_id "
        f"WHERE p.id IN ({marks})",
        best,
    )}
    return [
        Hit(*rows[pid][:7], start=best_start(rows[pid][8], rows[pid][7], rows[pid][9], query),
            text=rows[pid][8], score=round(scores[pid], 6), text_rank=text_rank.get(pid),
            semantic_rank=sem_rank.get(pid), similarity=sim.get(pid), passage_start=rows[pid][7])
        for pid in best if pid in rows
    ]


def _pairs(words: list[str]) -> set[tuple[str, str]]:
    return set(zip(words, words[1:], strict=False))


def best_start(text: str, start: float | None, anchors_json: str | None,
               query: str) -> float | None:
    """The start of the sentence (or segment) in the passage that shares most of the query's
    words and word pairs; the passage's start when none stands out."""
    if not anchors_json:
        return start
    anchors = json.loads(anchors_json)
    q = query_terms(query)
    q_words, q_pairs = set(q), _pairs(q)
    best, best_score = start, 0.0
    for i, (offset, at) in enumerate(anchors):
        stop = anchors[i + 1][0] if i + 1 < len(anchors) else len(text)
        words = query_terms(text[offset:stop])
        score = len(q_words & set(words)) + 2 * len(q_pairs & _pairs(words))
        if score > best_score:
            best, best_score = at, score
    return best


def highlight(text: str, query: str, mark: str = "==") -> str:
    """Words of `text` sharing a stem with a query word wrapped in `mark` (Obsidian highlight).
    Common words are marked only when the query has nothing else."""
    terms = set(query_terms(query))
    strong = {t for t in terms if t not in _QUIET} or terms
    stems = {t[:5] if len(t) > 5 else t for t in strong}

    def repl(m: re.Match) -> str:
        w = m.group(0).lower()
        if w in strong or (len(w) > 5 and w[:5] in stems):
            return f"{mark}{m.group(0)}{mark}"
        return m.group(0)

    return _WORD.sub(repl, text)
