"""Drill 4: the NAS goes away.

The deployment archives over SFTP (IGS_ARCHIVE__SFTP_*, host key checked against known_hosts)
to an asyncssh server on 127.0.0.1 that is down when the video arrives: the archive step fails
("unreachable"), backs off (NAS_RETRY: exponential from 5 s) and tries again. The server comes
back after ~15 s with a fault armed: the first upload is cut mid-file. A watcher polls the NAS
folder all along: the final name must never hold a partial file (the upload goes to a `.part`
name and is renamed). The next attempt resumes the `.part` and the step succeeds.
"""

from __future__ import annotations

import hashlib
import threading
import time

import dagster as dg

from drills import common
from igs_dagster_tests.dagster_env import stray_temp_files
from igs_dagster_tests.sshd import AsyncsshSftpServer

DOWN_S = 15.0
CUT_AFTER = 40_000  # bytes of the 90 kB video that land before the connection is cut


def run(ctx, result: common.DrillResult) -> None:
    nas = AsyncsshSftpServer(ctx.workdir / "nas-server")
    nas.start()  # picks the port and writes known_hosts...
    nas.stop()  # ...then the NAS is down
    try:
        _drill(ctx, result, nas)
    finally:
        nas.close()


def _drill(ctx, result: common.DrillResult, nas: AsyncsshSftpServer) -> None:
    deployment = ctx.own(
        "nas",
        IGS_ARCHIVE__SFTP_HOST=nas.host,
        IGS_ARCHIVE__SFTP_PORT=str(nas.port),
        IGS_ARCHIVE__SFTP_USER=nas.user,
        IGS_ARCHIVE__SFTP_KEY=str(nas.client_key),
        IGS_ARCHIVE__SFTP_KNOWN_HOSTS=str(nas.known_hosts),
        IGS_ARCHIVE__SFTP_ROOT="/videos",
    )
    expected = common.SAMPLE_MP4.stat().st_size
    sha = hashlib.sha256(common.SAMPLE_MP4.read_bytes()).hexdigest()
    seen = {"partial_final": [], "parts": set()}
    stop = threading.Event()

    def watch() -> None:  # what anyone listing the NAS folder would see, every 50 ms
        while not stop.is_set():
            try:
                paths = list((nas.root / "videos").rglob("*"))
            except OSError:  # not there yet, or changing under us
                paths = []
            for path in paths:
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if path.name == "video.mp4" and size != expected:
                    seen["partial_final"].append(size)
                elif path.name.endswith(".part"):
                    seen["parts"].add(path.name)
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, name="nas-watcher", daemon=True)
    watcher.start()
    try:
        url = ctx.media.add(common.SAMPLE_MP4, "nas-outage.mp4")
        (key,) = common.dry_keys(deployment, url)
        deployment.igs("send", url, check=True)
        deployment.start_daemon()
        with common.opened(deployment) as instance:
            run = common.wait_until(lambda: common.first_run(instance, key), 300, "the run", deployment)
            common.wait_until(lambda: any(a["outcome"] for a in common.step_attempts(instance, run.run_id, "video_archive")),
                       300, "the first archive attempt to fail", deployment)
            first_failure = time.time()
            nas.cut_after(CUT_AFTER)
            time.sleep(DOWN_S)
            nas.start()  # same port, same host key
            result.details["nas_down_s"] = round(time.time() - first_failure, 1)
            common.wait_until(lambda: nas.cuts >= 1, 300, "the upload to be cut", deployment, every=0.05)
            cut_listing = sorted(p.name for p in (nas.root / "videos").rglob("*") if p.is_file())
            result.details["listing_after_cut"] = cut_listing
            result.check("video.mp4" not in cut_listing and any(n.endswith(".part") for n in cut_listing),
                         "after the cut: only a .part, no final file", cut_listing)

            done = common.wait_until(lambda: common.finished_run(instance, run.run_id), 400, "the run to finish", deployment)
            attempts = common.step_attempts(instance, run.run_id, "video_archive")
    finally:
        stop.set()
        watcher.join(5)
        deployment.stop_daemon()

    result.check(done.status == dg.DagsterRunStatus.SUCCESS, "the run succeeded")
    outcomes = [a["outcome"] for a in attempts]
    result.details["archive_attempts"] = [
        {"at_s": round(a["start"] - attempts[0]["start"], 1), "outcome": a["outcome"],
         "error": a["error"]} for a in attempts
    ]
    gaps = [round(b["start"] - a["end"], 1) for a, b in zip(attempts, attempts[1:], strict=False)]
    result.details["retry_waits_s"] = gaps
    result.check(len(attempts) >= 3 and outcomes[-1] == "STEP_SUCCESS",
                 "archive retried through the outage and the cut, then succeeded", outcomes)
    errors = " | ".join(a["error"] or "" for a in attempts)
    result.check("unreachable" in errors, "outage reported as NAS unreachable", errors[:300])
    result.check(nas.connections >= 2, "reconnected after the cut", nas.connections)
    result.check(not seen["partial_final"], "the final name never held a partial file",
                 seen["partial_final"][:5])
    finals = list((nas.root / "videos").rglob("video.mp4"))
    result.check(
        len(finals) == 1 and hashlib.sha256(finals[0].read_bytes()).hexdigest() == sha,
        "archived video identical to the source",
    )
    result.check(finals and (finals[0].parent / ".video.mp4.sha256").is_file(), "sha256 sidecar written")
    leftovers = [p.name for p in (nas.root / "videos").rglob("*.part")]
    result.check(not leftovers, "no .part left on the NAS", leftovers)
    result.details["parts_seen"] = sorted(seen["parts"])

    common.tally(result, deployment, [key])
    stray = stray_temp_files(deployment.data / "media", deployment.vault)
    result.check(not stray, "no temp files left", stray[:5])
    result.check(result.duplicates == 0 and result.lost == 0, "nothing lost, nothing twice")
