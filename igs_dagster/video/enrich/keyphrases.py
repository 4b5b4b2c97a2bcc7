"""Tags for the offline enricher: keyphrases ranked by meaning, not word counts.

Word counts make tags of whatever a speaker repeats (`#country #fellow #americans` for the JFK
clip). Here the candidates are phrases of 1-3 adjacent content words (no stopword inside, no
punctuation between: "fellow americans", "natural selection"); each is embedded with the
project's all-MiniLM-L6-v2 (video/search/embed.py, numpy, offline) and scored by its cosine to
the whole text (KeyBERT's idea), then picked by Maximal Marginal Relevance so the tags don't
repeat each other (`#natural-selection` leaves no room for `#selection`). Without the bundled
model the candidates are ranked by how many sentences use them.

Tags are Obsidian-safe by construction: lowercase ASCII letters, digits and hyphens, starting
with a letter, so transcript text can never inject markup through them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from igs_dagster.video.enrich.text import STOPWORDS, Sentence

MAX_WORDS = 3
MAX_CANDIDATES = 300  # the most used ones, for long talks: a few hundred embeddings
MAX_CHUNKS = 24  # a 2-hour talk costs what a 25-minute one does
CHUNK_WORDS = 150  # the text's meaning = mean of ~150-word chunks (the model reads 256 tokens)
DIVERSITY = 0.5  # MMR: relevance vs. redundancy with tags already chosen
TITLE_WEIGHT = 0.2  # of the text's meaning that comes from its title
FREQUENCY_WEIGHT = 0.1  # added per e-fold of the sentences using the phrase
MIN_RELATIVE = 0.55  # a tag scores at least this share of the best one
# Frequent in speech, not in topics; the stopword list covers the rest.
_GENERIC = frozenset(
    """
    able believe build bring call called come comes coming find found hear heard help hold keep
    kept live look looked looking lord mind need place point put remember shall show stand
    start started stop talk talked taught tell told turn understand wish word words work
    year years time times people person man men today yesterday tomorrow
    """.split()
)
# after these a word is (nearly always) a verb: "we dedicate", "can not consecrate"
_BEFORE_VERB = frozenset(
    "can cannot could will would shall should may might must not we they i you he she".split()
)
_PIECE = re.compile(r"[^,;:()\[\]\"“”—–!?.…]+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+")


def tag_form(phrase: str) -> str | None:
    """`Fellow Americans` -> `fellow-americans`; None when nothing valid is left."""
    tag = re.sub(r"[^a-z0-9]+", "-", phrase.lower()).strip("-")
    if len(tag) < 3 or not tag[0].isalpha():
        return None
    return tag


def _content(word: str) -> bool:
    w = word.lower().replace("’", "'")
    return len(w) >= 3 and w.isalpha() and w not in STOPWORDS and w not in _GENERIC


def _ends_well(phrase: str) -> bool:
    """A phrase may not end in a likely verb form or adverb (`changed`, `repeatedly`): nouns
    end English noun phrases, and there is no tagger here to find them."""
    last = phrase.rsplit(" ", 1)[-1]
    first = phrase.split(" ", 1)[0]
    return not (len(last) > 4 and last.endswith(("ed", "ly"))) and not (
        len(first) > 4 and first.endswith("ly"))


def candidates(sentences: Sequence[Sentence]) -> Counter[str]:
    """Phrase -> in how many distinct sentences it occurs (repeated sentences count once)."""
    counts: Counter[str] = Counter()
    verbs: set[str] = set()
    seen: set[str] = set()
    for s in sentences:
        if s.text.lower() in seen:
            continue
        seen.add(s.text.lower())
        found: set[str] = set()
        for piece in _PIECE.findall(s.text):
            tokens = [w.lower().replace("’", "'") for w in _WORD.findall(piece)]
            verbs.update(b for a, b in zip(tokens, tokens[1:], strict=False) if a in _BEFORE_VERB)
            run: list[str] = []
            for word in [*tokens, ""]:
                if word and _content(word):
                    run.append(word)
                    continue
                for n in range(1, MAX_WORDS + 1):
                    for i in range(len(run) - n + 1):
                        phrase = " ".join(run[i : i + n])
                        if _ends_well(phrase):
                            found.add(phrase)
                run = []
        counts.update(found)
    # A noun phrase ends in a noun, and a run of content words is mostly a subject's noun
    # phrase and its verb (`natural selection acts`): drop phrases ending in a word this text
    # uses as a verb, three-word ones no more used than their two-word start or end, and
    # two-word ones found only as the end of a recurring three-word one (`selection acts`).
    tails: Counter[str] = Counter()
    for p, c in counts.items():
        if p.count(" ") == 2:
            tail = p.split(" ", 1)[1]
            tails[tail] = max(tails[tail], c)
    return Counter({
        p: c for p, c in counts.items()
        if p.rsplit(" ", 1)[-1] not in verbs
        and not (p.count(" ") == 2 and max(counts[p.rsplit(" ", 1)[0]],
                                           counts[p.split(" ", 1)[1]]) <= c)
        and not (p.count(" ") == 1 and tails[p] >= max(c, 2))
    })


def _chunks(sentences: Sequence[Sentence]) -> list[str]:
    """The text (each distinct sentence once) in ~150-word chunks, at most MAX_CHUNKS of them
    spread evenly over it."""
    chunks, words = [], []
    for text in dict.fromkeys(s.text for s in sentences):
        words += text.split()
        if len(words) >= CHUNK_WORDS:
            chunks.append(" ".join(words))
            words = []
    if words:
        chunks.append(" ".join(words))
    if len(chunks) > MAX_CHUNKS:
        chunks = [chunks[round(i * (len(chunks) - 1) / (MAX_CHUNKS - 1))] for i in range(MAX_CHUNKS)]
    return chunks


def _mmr(phrases: list[str], relevance: np.ndarray, vectors: np.ndarray,
         limit: int) -> list[int]:
    """Maximal Marginal Relevance; a phrase sharing a word with a chosen one is never taken."""
    chosen: list[int] = []
    floor = MIN_RELATIVE * float(relevance.max())
    left = [i for i in range(len(relevance)) if relevance[i] >= floor]
    while left and len(chosen) < limit:
        used = {w for i in chosen for w in phrases[i].split()}
        left = [i for i in left if not used & set(phrases[i].split())]
        if not left:
            break
        if chosen:
            redundancy = (vectors[left] @ vectors[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(left))
        score = (1 - DIVERSITY) * relevance[left] - DIVERSITY * redundancy
        best = left[int(np.argmax(np.round(score, 6)))]  # rounded: ties go to the first
        chosen.append(best)
        left.remove(best)
    return chosen


def keyphrase_tags(sentences: Sequence[Sentence], title: str = "", limit: int = 8) -> list[str]:
    """Up to `limit` tags, most topical first (fewer for short texts: ~1 per 10 words)."""
    counts = candidates(sentences)
    if not counts:
        return []
    words = len(" ".join(dict.fromkeys(s.text.lower() for s in sentences)).split())
    limit = min(limit, max(2, words // 10))
    # In a longer talk a topic recurs: phrases used once there are mostly turns of speech;
    # three-word phrases need the support of a second sentence in any text.
    support = 1 if words < 400 else 2 if words < 3000 else 3
    counts = Counter({p: c for p, c in counts.items()
                      if c >= max(support, 2 if p.count(" ") == 2 else 1)}) or counts
    # Most used first; then longer phrases (a phrase's parts count as often as it does)
    ranked = sorted(counts, key=lambda p: (-counts[p], -p.count(" "), p))[:MAX_CANDIDATES]
    try:
        from igs_dagster.video.search.embed import encoder

        enc = encoder()
    except Exception:  # noqa: BLE001 - the model package is missing: counts are all we have
        picked = _by_count(ranked, limit)
    else:
        vectors = enc.encode(ranked)
        doc = enc.encode(_chunks(sentences)).mean(axis=0)
        if title.strip():  # a hint only: for a local file it is just the file's name
            doc = (1 - TITLE_WEIGHT) * doc + TITLE_WEIGHT * enc.encode([title])[0]
        doc /= max(float(np.linalg.norm(doc)), 1e-12)
        # meaning first; a phrase used in more sentences gets a little more (the talk's topic
        # recurs, a vivid one-off image doesn't)
        uses = np.log(np.array([counts[p] for p in ranked], dtype=np.float32))
        relevance = vectors @ doc + FREQUENCY_WEIGHT * uses
        picked = [ranked[i] for i in _mmr(ranked, relevance, vectors, limit)]
    tags = [t for t in (tag_form(p) for p in picked) if t]
    return list(dict.fromkeys(tags))


def _by_count(ranked: list[str], limit: int) -> list[str]:
    """Without embeddings: the most used phrases, none inside one already chosen."""
    chosen: list[str] = []
    for phrase in ranked:
        if not any(set(phrase.split()) & set(c.split()) for c in chosen):
            chosen.append(phrase)
        if len(chosen) >= limit:
            break
    return chosen
