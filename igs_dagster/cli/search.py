"""`igs search "query"`: ranked transcript passages from the vault's search index;
`igs search --reindex`: rebuild it from the notes on disk, with progress."""

from __future__ import annotations

import argparse
import json
import sys

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.core.vault import is_present
    from igs_dagster.video.ids import timestamp_url
    from igs_dagster.video.notes import format_duration
    from igs_dagster.video.search.index import SearchIndex, index_path
    from igs_dagster.video.search.query import highlight, search

    if args.reindex:
        return _reindex(settings)
    if args.query is None:
        raise PermanentError("give a query (or --reindex)")
    if args.n < 1 or args.n > 200:
        raise PermanentError("-n wants a number from 1 to 200")
    path = index_path(settings.data_dir)
    if not path.is_file():
        raise PermanentError(f"no search index yet ({path}): ingest a video first")
    with SearchIndex(path) as index:
        if not index.prune_missing(settings.vault_dir) and not is_present(settings.vault_dir):
            print(f"igs: warning: the vault {settings.vault_dir} is not there (moved, unmounted?): "
                  "the index keeps every note; the links below work once it is back",
                  file=sys.stderr)
        hits = search(index, args.query, n=args.n, mode=args.mode, since=args.since,
                      channel=args.channel)
    if args.json:
        out = []
        for h in hits:
            item = h.to_json()
            item["url"] = timestamp_url(h.source_url, int(h.start or 0)) if h.source_url else None
            item["wikilink"] = f"[[{h.slug}]]"
            item["marked"] = highlight(h.text, args.query)
            out.append(item)
        json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0
    if not hits:
        print("no match")
        return 0
    for rank, h in enumerate(hits, 1):
        when = format_duration(int(h.start)) if h.start is not None else "-"
        url = timestamp_url(h.source_url, int(h.start or 0)) if h.source_url else None
        at = f"[{when}]({url})" if url else when
        title = " ".join(h.title.split())
        print(f"{rank}. [[{h.slug}]] {title} · {at}" + (f" · {h.channel}" if h.channel else ""))
        print(f"   {highlight(' '.join(h.text.split()), args.query)}")
    return 0


def _reindex(settings: Settings) -> int:
    """Rebuild the index from the vault's notes (the vault must be there), with progress."""
    from igs_dagster.defs.video.vault_guard import checked_vault
    from igs_dagster.video.search.embed import semantic_available
    from igs_dagster.video.search.index import SearchIndex, index_path
    from igs_dagster.video.search.reindex import reindex

    vault = checked_vault(settings)
    semantic = semantic_available()

    def progress(n: int, total: int, name: str) -> None:
        print(f"reindex {n}/{total}: {name}", flush=True)

    with SearchIndex(index_path(settings.data_dir)) as index:
        result = reindex(index, vault, settings.media_dir, semantic=semantic, on_progress=progress)
        total = index.stats()["notes"]
    for skipped in result.skipped:
        print(f"skipped {skipped}")
    print(f"reindexed {result.notes} notes ({result.changed} changed"
          + (", full-text only: no embedding model" if not semantic else "")
          + f"), dropped {len(result.dropped)} without a note file"
          + (f" ({', '.join(result.dropped)})" if result.dropped else "")
          + f"; the index holds {total} notes")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search the vault's transcripts (words and meaning)")
    p.add_argument("query", nargs="?", help="words or a question")
    p.add_argument("--reindex", action="store_true",
                   help="rebuild the index from the notes on disk (drops notes deleted from the vault)")
    p.add_argument("-n", type=int, default=10, help="how many passages (default 10)")
    p.add_argument("--since", help="only notes published (else transcribed) on or after YYYY-MM-DD")
    p.add_argument("--channel", help="only notes whose channel contains this text")
    p.add_argument("--mode", choices=("hybrid", "text", "semantic"), default="hybrid",
                   help="hybrid (default): full-text and semantic fused; or one of them")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_search)
