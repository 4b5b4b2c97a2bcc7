"""Dagster's webserver and daemon as `igs dev` runs them: the same programs, watching the code
server every WATCH_S seconds instead of every second.

Both poll the code server's id (`dagster._grpc.server_watcher.WATCH_INTERVAL`, 1 s) to notice a
reloaded location. `igs dev` supervises that server itself and restarts it only after a crash,
so a slower watch costs nothing a user sees, while at rest the 120 gRPC calls a minute were
about a fifth of what the whole stack cost (bench figure 10). If Dagster renames the constant,
nothing is patched (test_startup_warnings checks the name still exists).

The daemon's run-retry consumer (EVENT_LOG_CONSUMER, which starts the retry of a crashed run)
reads new failures every 15 s instead of 5 s, through Dagster's own environment variable
(a value set by the user wins): a retry starts up to 10 s later, a minute at rest costs less.

    python -m igs_dagster.cli.dagster_entry dagster_webserver -w workspace.yaml ...
    python -m igs_dagster.cli.dagster_entry dagster._daemon run -w workspace.yaml ...
"""

from __future__ import annotations

import os
import runpy
import sys

WATCH_S = 10.0
RETRY_CONSUMER_S = "15"
MODULES = ("dagster_webserver", "dagster._daemon")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in MODULES:
        sys.exit(f"usage: python -m igs_dagster.cli.dagster_entry {{{'|'.join(MODULES)}}} ARGS...")
    from dagster._grpc import server_watcher

    if hasattr(server_watcher, "WATCH_INTERVAL"):
        server_watcher.WATCH_INTERVAL = WATCH_S
    module = sys.argv[1]
    os.environ.setdefault("DAGSTER_EVENT_LOG_CONSUMER_DAEMON_INTERVAL_SECONDS", RETRY_CONSUMER_S)
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
