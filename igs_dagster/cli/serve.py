"""`igs demo|dev|api|service`: run the system (demo, UI + daemon, event API) or render service files."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from igs_dagster.cli.common import port
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings

DEBUG_ENV = "IGS_DEBUG"  # not a setting: pydantic-settings ignores unknown top-level IGS_* names

def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.cli.demo import run_demo

    note = run_demo(settings)
    print(note)
    return 0


def _refuse_a_second_service(settings: Settings) -> None:
    """One service per data folder: `igs dev` (its lock) or any Dagster daemon on this
    DAGSTER_HOME (`dagster dev`, `dg dev`, a hand-started daemon) is refused with one line."""
    from igs_dagster.cli.daemon_probe import local_daemon_pids
    from igs_dagster.core import service_lock

    running = service_lock.holder(settings.data_dir)
    if running is not None:
        raise service_lock.ServiceRunning(service_lock.describe(running, settings.data_dir))
    pids = local_daemon_pids(settings.dagster_home)
    if pids:
        raise service_lock.ServiceRunning(
            f"a Dagster daemon already runs on {settings.dagster_home} (pid "
            f"{', '.join(map(str, pids))}): stop it first (or give this one another IGS_DATA_DIR)")


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.defs.instance import open_instance

    _refuse_a_second_service(settings)
    open_instance(settings)  # persistent DAGSTER_HOME with the project's dagster.yaml
    os.chdir(settings.dagster_home)  # Dagster reads its dagster.yaml from there, not from here
    lock = None
    if args.reload:
        from igs_dagster.core import webserver
        from igs_dagster.core.service_lock import ServiceLock

        # `dagster dev` is exec'd in this process: the lock's descriptor goes with it
        lock = ServiceLock(settings.data_dir)
        lock.acquire(webserver.base_url(args.host, args.port), inheritable=True)
        argv = [sys.executable, "-m", "dagster", "dev", "-m", "igs_dagster.definitions",
                "-h", args.host, "-p", str(args.port)]
    else:  # code server + webserver + daemon under a supervisor that imports no Dagster
        argv = [sys.executable, "-m", "igs_dagster.cli.stack", "--host", args.host,
                "--port", str(args.port), "--data-dir", str(settings.data_dir)]
    try:
        os.execv(sys.executable, argv)
    finally:  # reached only when the exec failed
        if lock is not None:
            lock.release()
    return 0  # pragma: no cover


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.api import serve

    serve(settings, host=args.host, port=args.port)
    return 0


def cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    from igs_dagster.cli import service
    from igs_dagster.core.redact import is_secret_name

    if not args.print:
        raise PermanentError("only --print is supported: copy the files where the hint says")
    files = service.render_services(
        args.kind, python=sys.executable, project_dir=Path.cwd(),
        dagster_home=settings.dagster_home,
        env={k: v for k, v in os.environ.items()
             if k.startswith("IGS_") and not is_secret_name(k) and k != DEBUG_ENV},
    )
    for name, content in files.items():
        print(f"# ---- {name} ----\n{content}")
    print(service.install_hint(args.kind))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="ingest the bundled sample clip through the Dagster assets")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("dev", help="webserver + daemon with the persistent DAGSTER_HOME")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=3000)
    p.add_argument("--reload", action="store_true",
                   help="plain `dagster dev`: code reloadable from the UI, two more processes")
    p.set_defaults(func=cmd_dev)
    p = sub.add_parser("api", help="HTTP event API (POST /events, GET /health)")
    p.add_argument("--host", help="address to bind (default IGS_API__HOST, 127.0.0.1)")
    p.add_argument("--port", type=port, help="port (default IGS_API__PORT, 3111; 0 = any free port)")
    p.set_defaults(func=cmd_api)

    svc = sub.add_parser("service", help="always-on service files").add_subparsers(
        dest="svc", required=True, metavar="COMMAND")
    p = svc.add_parser("install", help="render launchd/systemd files")
    p.add_argument("--kind", choices=["systemd", "launchd"], default="launchd" if sys.platform == "darwin" else "systemd")
    p.add_argument("--print", action="store_true", help="print the files (no root needed)")
    p.set_defaults(func=cmd_service)
