"""Dagster's webserver and daemon as `igs dev` runs them: the same programs, watching the code
server every WATCH_S seconds instead of every second.

Both poll the code server's id every second to notice a reloaded location (dagster_compat
entry 2). `igs dev` supervises that server itself and restarts it only after a crash, so a slower
watch costs nothing a user sees, while at rest the 120 gRPC calls a minute were
about a fifth of what the whole stack cost (bench figure 10). If Dagster renames the constant,
nothing is patched (test_dagster_compat fails).

The daemon's run-retry consumer (EVENT_LOG_CONSUMER, which starts the retry of a crashed run)
reads new failures every 15 s instead of 5 s, through Dagster's own environment variable
(dagster_compat entry 3; a value set by the user wins): a retry starts up to 10 s later, a
minute at rest costs less.

    python -m igs_dagster.cli.dagster_entry dagster_webserver -w workspace.yaml ...
    python -m igs_dagster.cli.dagster_entry dagster._daemon run -w workspace.yaml ...
"""

from __future__ import annotations

import os
import runpy
import sys

from igs_dagster.dagster_compat import (
    DAEMON_MODULE,
    RETRY_CONSUMER_INTERVAL_ENV,
    slow_code_server_watch,
)

WATCH_S = 10.0
RETRY_CONSUMER_S = "15"
MODULES = ("dagster_webserver", DAEMON_MODULE)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in MODULES:
        sys.exit(f"usage: python -m igs_dagster.cli.dagster_entry {{{'|'.join(MODULES)}}} ARGS...")
    slow_code_server_watch(WATCH_S)
    module = sys.argv[1]
    os.environ.setdefault(RETRY_CONSUMER_INTERVAL_ENV, RETRY_CONSUMER_S)
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
