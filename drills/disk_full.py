"""Drill 5: the disk under the data folder fills up during a download.

A real ENOSPC: a 1 MiB tmpfs is mounted on the deployment's `<data>/media` (where downloads,
transcripts and their temp files go; the queue and DAGSTER_HOME stay outside it) and filled with
a ballast file to ~48 kB short of full. The download step fails with a one-line "No space left
on device"; between attempts the video's folder holds nothing half-written (no `.part`, no
`video.mp4`, no `download.json`); the ballast is deleted and the step's next retry succeeds.

Mounting needs root (or passwordless sudo); elsewhere the drill is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg

from drills.common import (
    SAMPLE_MP4,
    DrillResult,
    dry_keys,
    finished_run,
    first_run,
    opened,
    step_attempts,
    step_events,
    tally,
    wait_until,
)
from igs_dagster_tests.dagster_env import stray_temp_files

SIZE_KB = 1024
LEAVE_FREE = 48 * 1024


def _privileged() -> list[str] | None:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(
        ["sudo", "-n", "true"], capture_output=True, check=False
    ).returncode == 0:
        return ["sudo", "-n"]
    return None


def mount_tmpfs(path: Path, size_kb: int) -> str | None:
    """Mount a size-limited tmpfs on `path`; None when mounted, else why not."""
    prefix = _privileged()
    if prefix is None or not shutil.which("mount"):
        return "mounting a size-limited tmpfs needs root or passwordless sudo"
    options = f"size={size_kb}k,mode=0700,uid={os.getuid()},gid={os.getgid()}"
    proc = subprocess.run(
        [*prefix, "mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        return f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}"
    return None


def unmount(path: Path) -> None:
    prefix = _privileged() or []
    for _ in range(10):
        if subprocess.run([*prefix, "umount", str(path)], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(1)


def fill(folder: Path, leave: int) -> Path:
    """A ballast file that leaves about `leave` bytes free on folder's file system."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    ballast = folder / "ballast.bin"
    with open(ballast, "wb") as handle:
        handle.write(b"\0" * max(free - leave, 0))
    return ballast


def run(ctx, result: DrillResult) -> None:
    deployment = ctx.own("diskfull")
    media = deployment.data / "media"
    media.mkdir(parents=True, exist_ok=True)
    why_not = mount_tmpfs(media, SIZE_KB)
    if why_not:
        result.skipped = why_not
        return
    try:
        _drill(ctx, result, deployment, media)
    finally:
        deployment.stop_daemon()
        unmount(media)


def _drill(ctx, result: DrillResult, deployment, media: Path) -> None:
    ballast = fill(media, LEAVE_FREE)
    result.details["free_bytes"] = os.statvfs(media).f_bavail * os.statvfs(media).f_frsize
    url = ctx.media.add(SAMPLE_MP4, "disk-full.mp4")
    (key,) = dry_keys(deployment, url)
    folder = media / key
    deployment.igs("send", url, check=True)
    deployment.start_daemon()
    with opened(deployment) as instance:
        run = wait_until(lambda: first_run(instance, key), 300, "the run", deployment)

        def between_attempts():
            """The folder as seen after a failed attempt and before the next one started."""
            events = step_events(instance, run.run_id, "video_download")
            if not events or events[-1][0] != "STEP_UP_FOR_RETRY":
                return None
            listing = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
            again = step_events(instance, run.run_id, "video_download")
            return {"listing": listing} if len(again) == len(events) else None

        seen = wait_until(between_attempts, 300, "a failed download attempt", deployment, every=0.2)
        ballast.unlink()  # free the space; the step's next retry must succeed
        freed_at = time.time()
        result.details["folder_after_failure"] = seen["listing"]
        result.check(not seen["listing"], "nothing half-written left after the failed attempt",
                     seen["listing"])

        done = wait_until(lambda: finished_run(instance, run.run_id), 300, "the run to finish", deployment)
        attempts = step_attempts(instance, run.run_id, "video_download")

    result.details["download_attempts"] = [
        {"outcome": a["outcome"], "error": a["error"]} for a in attempts
    ]
    result.details["recovered_after_free_s"] = round(attempts[-1]["end"] - freed_at, 1) if attempts else None
    result.check(done.status == dg.DagsterRunStatus.SUCCESS, "the run succeeded after freeing space")
    failures = [a for a in attempts if a["outcome"] != "STEP_SUCCESS"]
    result.check(failures and all("No space left on device" in (a["error"] or "") for a in failures),
                 "each failed attempt says 'No space left on device'",
                 [a["error"] for a in failures][:2])
    result.check(attempts and attempts[-1]["outcome"] == "STEP_SUCCESS", "a retry succeeded")
    result.check((folder / "video.mp4").stat().st_size == SAMPLE_MP4.stat().st_size,
                 "the video downloaded whole")
    tally(result, deployment, [key])
    stray = stray_temp_files(media, deployment.vault)
    result.check(not stray, "no temp files left", stray[:5])
    result.check(result.duplicates == 0 and result.lost == 0, "nothing lost, nothing twice")
