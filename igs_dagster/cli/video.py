"""`igs send|transcript|summarize|event`: work for the video pipeline, queued in the inbox."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from igs_dagster.cli.common import count, print_json, read_text_file
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.core.events import VideoDownload, VideoDownloadData
    from igs_dagster.video.feeds import is_playlist_url
    from igs_dagster.video.intake import source_for

    if args.playlist or any(is_playlist_url(u) for u in args.urls):
        from igs_dagster.cli.feeds import send_playlists

        return send_playlists(args, settings)
    events = [VideoDownload(name="video.download", data=VideoDownloadData(url=u)) for u in args.urls]
    # validate everything first: one bad URL queues nothing
    sources = [source_for(e, settings) for e in events]
    if args.dry_run:
        for url, source in zip(args.urls, sources, strict=True):
            print(f"{source.key}\t{source.kind}\t{url}")
        return 0
    from igs_dagster.cli import videos

    instance_box: list = []
    follow, code = [], 0
    for event, source in zip(events, sources, strict=True):
        line, outcome = videos.send_url(event, source.key, settings, args.force, instance_box)
        print(line)
        code = max(code, int(outcome == "failed"))  # with or without --wait: it failed
        if outcome == "run":
            follow.append(source.key)
    return max(code, videos.finish_send(follow, settings, args.wait, args.timeout))


def cmd_transcript(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.core.events import TranscriptProcess, TranscriptProcessData
    from igs_dagster.intake import accept

    text = None
    file = None
    if args.text_file is not None:
        if args.text_file == "-" and args.title is None:
            raise PermanentError("--title is required when the text comes from stdin")
        text = read_text_file(args.text_file)
        default_title = Path(args.text_file).stem
    else:
        file = Path(args.file).expanduser().absolute()  # '..' stays visible and is refused
        default_title = Path(args.file).stem or "untitled"
    data = TranscriptProcessData(
        file=file, text=text, source=args.source,
        title=args.title if args.title is not None else default_title,
    )
    print(accept(TranscriptProcess(name="transcript.process", data=data), settings).message)
    return 0


NOTES_FOLDER = Path("Resources") / "videos"


def find_note(text: str, settings: Settings) -> Path:
    """The note `igs summarize` means: a path (absolute, from here, or in the vault), or a bare
    file name or slug found in the vault (`some-talk.md`, `some-talk`). A note that is nowhere
    is one line that says where it looked."""
    note = Path(text).expanduser()
    if note.is_absolute():
        return note
    if (Path.cwd() / note).exists():
        return Path.cwd() / note  # relative to where the user is
    vault = settings.vault_dir
    if (vault / note).exists():
        return note  # relative to the vault (intake resolves it)
    if len(note.parts) == 1:
        names = {note.name, f"{note.name}.md"}
        found = sorted({p for name in names for p in (vault / NOTES_FOLDER).glob(name)}
                       | {p for name in names for p in vault.rglob(name) if p.is_file()})
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise PermanentError(f"{text} names {len(found)} notes in the vault: give one path "
                                 f"({', '.join(str(p.relative_to(vault)) for p in found[:5])})")
    raise PermanentError(f"no note {text} here or in the vault {vault} (looked for {vault / note}"
                         + (f" and {vault / NOTES_FOLDER / note.name}(.md)" if len(note.parts) == 1 else "")
                         + "): `igs videos` lists the notes")


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.core.events import ContentSummarize, ContentSummarizeData
    from igs_dagster.intake import accept

    note = find_note(args.note, settings)
    event = ContentSummarize(name="content.summarize", data=ContentSummarizeData(note=note))
    print(accept(event, settings).message)
    return 0


def cmd_event(args: argparse.Namespace, settings: Settings) -> int:
    """One raw event, exactly as `POST /events` takes it."""
    from igs_dagster.core.events import parse_event
    from igs_dagster.intake import accept

    if args.json == "-" or args.json.startswith("@"):
        text = read_text_file(args.json.removeprefix("@"))
    else:
        text = args.json
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise PermanentError(f"event is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise PermanentError("event must be a JSON object {\"name\": ..., \"data\": {...}}")
    result = accept(parse_event(raw), settings)
    if args.print_json:
        print_json(result.to_json())
    else:
        print(result.message)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("send", help="queue YouTube/web URLs or local files for ingest (works while Dagster is down)")
    p.add_argument("urls", nargs="+", metavar="URL")
    p.add_argument("--dry-run", action="store_true", help="print the partition key, queue nothing")
    p.add_argument("--playlist", action="store_true",
                   help="expand every URL as a playlist/feed (YouTube playlists and channels, "
                   "and .rss/.xml/.atom/feed URLs are expanded without it)")
    p.add_argument("--limit", type=count(1), metavar="N", help="playlists: only the first N entries")
    p.add_argument("--force", action="store_true", help="run a video sent before again (as `igs retry`)")
    p.add_argument("--wait", action="store_true",
                   help="follow the run (download %%, transcription) to the note; exit 1 if it fails")
    p.add_argument("--timeout", type=count(1), help="with --wait: give up after this many seconds")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("transcript", help="queue a local audio/video file or a transcript text")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="local audio/video file")
    src.add_argument("--text-file", help="plain-text UTF-8 transcript ('-' = stdin): skips Whisper")
    p.add_argument("--title", help="note title (default: the file name)")
    p.add_argument("--source", default="manual", help="label: podcast, manual, meeting, ...")
    p.set_defaults(func=cmd_transcript)

    p = sub.add_parser("summarize", help="queue (re-)enrichment of a vault note")
    p.add_argument("note", help="note path (absolute, or relative to here or to the vault)")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("event", help="queue one raw event, as POST /events takes it")
    p.add_argument("json", metavar="JSON", help="the event JSON, @FILE, or '-' for stdin")
    p.add_argument("--json", dest="print_json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_event)
