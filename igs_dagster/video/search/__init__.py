"""Search over the vault's transcripts: passages (passages.py) in one SQLite file per data folder
(index.py: FTS5 for words, MiniLM vectors from embed.py for meaning), ranked by query.py
(BM25 and cosine similarity fused by reciprocal rank); related notes (related.py) reuse both.
"""
