"""`igs follow|unfollow|following`, and `igs send` of a playlist, channel or feed URL."""

from __future__ import annotations

import argparse

from igs_dagster.cli.common import count, print_json
from igs_dagster.core.settings import Settings
from igs_dagster.core.text import one_line, table


def send_playlists(args: argparse.Namespace, settings: Settings) -> int:
    """Each playlist URL expanded (flat: nothing downloaded), then its entries queued in order.
    Every URL is read and checked before anything is queued: one bad URL queues nothing.
    Entries sent before are what `igs send` of their URL would make of them: with --force a
    retry, with --wait their state (a failed one makes the exit 1); --wait then follows every
    queued entry to its note or failure (videos.finish_send, as for single URLs)."""
    from igs_dagster.cli import videos
    from igs_dagster.core.errors import PermanentError
    from igs_dagster.core.events import VideoDownload, VideoDownloadData
    from igs_dagster.video.feeds import is_playlist_url
    from igs_dagster.video.intake import accept_entries, read_playlist, source_for

    items = []
    for url in args.urls:
        if args.playlist or is_playlist_url(url):
            items.append((url, read_playlist(url, limit=args.limit)))
        else:
            event = VideoDownload(name="video.download", data=VideoDownloadData(url=url))
            items.append((url, (event, source_for(event, settings))))
    instance_box: list = []
    follow: list[str] = []
    code = 0
    for url, item in items:
        if isinstance(item, tuple):
            event, source = item
            if args.dry_run:
                print(f"{source.key}\t{source.kind}\t{url}")
                continue
            line, outcome = videos.send_url(event, source.key, settings, args.force,
                                            instance_box)
            print(line)
            code = max(code, int(outcome == "failed"))  # as `igs send URL` of a failed video
            follow += [source.key] if outcome == "run" else []
            continue
        planned = accept_entries(item.entries, settings, dry_run=args.dry_run)
        new = sum(1 for q in planned if q.event_id is not None)
        retried = 0
        for q in planned:
            state, outcome = ("new" if args.dry_run else "queued"), "run"
            if q.event_id is None:
                state, outcome = "known", None
            if q.event_id is None and not args.dry_run and (args.force or args.wait):
                try:
                    _, outcome = videos.send_known(q.key, settings, args.force, instance_box)
                    state = "retry" if args.force else {
                        "done": "done", "failed": "failed"}.get(outcome, "in progress")
                    retried += int(args.force)
                except PermanentError:  # --force while a run of it is in progress: follow it
                    state, outcome = "in progress", "run"
            code = max(code, int(args.wait and outcome == "failed"))
            follow += [q.key] if outcome == "run" and not args.dry_run else []
            print(f"{q.key}\t{state}\t{one_line(q.entry.title or q.entry.url, 100)}")
        verb = "would queue" if args.dry_run else "queued"
        known = f"{len(planned) - new} already known" + (f" ({retried} queued again)"
                                                           if retried else "")
        print(f"{one_line(item.title or url, 100)}: {len(planned)} entries, {verb} {new}, {known}")
    if args.dry_run:
        return 0
    return max(code, videos.finish_send(follow, settings, args.wait, args.timeout))


def cmd_follow(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.core.inbox import EventQueue
    from igs_dagster.video.subscriptions import Subscriptions, follow

    newest = None if args.all else (args.newest if args.newest is not None else settings.feeds.newest)
    feed, queued = follow(
        Subscriptions(settings.feeds_db), EventQueue(settings.queue_db), settings.data_dir,
        args.url, newest=newest, interval_s=args.interval or settings.feeds.interval_s,
    )
    new = [q for q in queued if q.event_id is not None]
    for item in new:
        print(f"{item.key}\tqueued\t{one_line(item.entry.title or item.entry.url, 100)}")
    print(f"following {one_line(feed.title or feed.url, 100)} ({feed.kind} {feed.poll_url}, "
          f"every {feed.interval_s} s): queued {len(new)} of its newest entries")
    return 0


def cmd_unfollow(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.video.subscriptions import Subscriptions

    feed = Subscriptions(settings.feeds_db).remove(args.url.strip())
    print(f"no longer following {one_line(feed.title or feed.url, 100)}")
    return 0


def cmd_following(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.video.subscriptions import Subscriptions

    feeds = Subscriptions(settings.feeds_db).list()
    if args.json:
        print_json([f.to_json() for f in feeds])
        return 0
    if not feeds:
        print("following nothing (igs follow URL)")
        return 0
    rows = [[one_line(f.title or "", 40), f.url, f"{f.interval_s}s",
             (f.to_json()["last_poll"] or "-"), one_line(f.last_error or "ok", 60)] for f in feeds]
    print(table(rows, ["title", "url", "every", "last poll", "status"]))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("follow", help="follow a YouTube channel/playlist or a podcast/RSS/Atom feed")
    p.add_argument("url", metavar="URL")
    take = p.add_mutually_exclusive_group()
    take.add_argument("--newest", type=count(0), metavar="N",
                      help="queue the N newest entries now (default: IGS_FEEDS__NEWEST, 3)")
    take.add_argument("--all", action="store_true", help="queue every entry the feed lists now")
    p.add_argument("--interval", type=count(5), metavar="SECONDS",
                   help="poll interval (default: IGS_FEEDS__INTERVAL_S, 900)")
    p.set_defaults(func=cmd_follow)

    p = sub.add_parser("unfollow", help="stop following a feed")
    p.add_argument("url", metavar="URL")
    p.set_defaults(func=cmd_unfollow)

    p = sub.add_parser("following", help="the followed feeds")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_following)
