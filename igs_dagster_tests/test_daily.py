"""Daily use as a user drives it: `igs send --wait`, `igs videos`, `igs retry`, and `igs send`
telling the truth about a video sent before, against a real daemon and the real pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from igs_dagster_tests.conftest import SAMPLE_MP4
from igs_dagster_tests.dagster_env import DagsterEnv


@pytest.mark.slow
def test_send_wait_videos_retry(deployment: DagsterEnv, media_server):
    # 1. send --wait: progress, then the note's path, exit 0
    url = media_server.add(SAMPLE_MP4, "daily-ok.mp4")
    key = deployment.key(url)
    proc = deployment.igs("send", "--wait", "--timeout", "240", url, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"\n$ igs send --wait {url}\n{proc.stdout}")  # the transcript in the report
    lines = proc.stdout.splitlines()
    assert lines[0] == f"queued {key}"
    assert "no Dagster daemon" not in proc.stdout  # the daemon is running
    assert any("video_download: download" in line and "%" in line for line in lines), proc.stdout
    assert any("transcript: started" in line for line in lines), proc.stdout
    note = Path(lines[-1].split("done → ", 1)[1])
    assert lines[-1].startswith(f"{key}: done → ") and note.is_file()

    # 2. sending it again says it is done, with the note; nothing new runs
    proc = deployment.igs("send", url, check=True)
    assert proc.stdout.splitlines()[0] == f"already done: {key} → {note}"

    # 3. a failing video: --wait ends with the reason, the retry command and exit 1
    late = media_server.url("daily-late.mp4")
    bad = deployment.key(late)
    proc = deployment.igs("send", "--wait", "--timeout", "240", late, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    print(f"$ igs send --wait {late}   # exit {proc.returncode}\n{proc.stdout}")
    last = proc.stdout.splitlines()[-1]
    assert last.startswith(f"{bad}: failed: video_download: download failed") and "404" in last
    assert last.endswith(f"retry with `igs retry {bad}`")
    proc = deployment.igs("send", late)  # the truth, not "queued (already known)"
    print(f"$ igs send {late}   # exit {proc.returncode}\n{proc.stdout}")
    assert proc.stdout.startswith(f"failed: {bad}: video_download:") and "igs retry" in proc.stdout
    assert proc.returncode == 1  # a failure, as with --wait (issue 26)

    # 4. the host is back: retry by URL through the inbox and sensor, to the note
    media_server.add(SAMPLE_MP4, "daily-late.mp4")
    proc = deployment.igs("retry", "--wait", "--timeout", "240", late, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"$ igs retry --wait {late}\n{proc.stdout}")
    assert proc.stdout.splitlines()[0] == f"queued retry 1 of {bad}"
    assert proc.stdout.splitlines()[-1].startswith(f"{bad}: done → ")

    # 5. igs videos: newest first, title, status, duration, note
    proc = deployment.igs("videos", "--json", check=True)
    videos = json.loads(proc.stdout)
    assert [v["key"] for v in videos] == [bad, key]
    assert all(v["status"] == "done" and Path(v["note"]).is_file() for v in videos)
    assert {v["title"] for v in videos} == {"JFK inaugural address (excerpt)"}  # media's tags
    assert all(10 < v["duration_s"] < 12 for v in videos)
    table = deployment.igs("videos", check=True).stdout.splitlines()
    print("$ igs videos\n" + "\n".join(table))
    assert table[0].split()[:4] == ["KEY", "TITLE", "STATUS", "DURATION"]
    assert table[2].startswith(bad) and "done" in table[2] and "0:11" in table[2]

    # 6. retry of something never sent: one line, exit 2
    proc = deployment.igs("retry", "abcdefghijk")  # a YouTube ID never sent here
    assert proc.returncode == 2
    assert proc.stderr == "igs: error: 'abcdefghijk' was never sent: send it with `igs send abcdefghijk`\n"


def test_send_without_daemon_says_how_to_process_it(igs_env, capsys):
    from igs_dagster.cli.app import main

    code = main(["send", "https://youtu.be/dQw4w9WgXcQ"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0] == "queued dQw4w9WgXcQ"
    assert out[1] == "no Dagster daemon is running here: start `igs dev` or the service to process it"


README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_block(heading: str) -> str:
    text = README.read_text()
    section = text.split(heading, 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_readme_backfill_commands_work_as_written(deployment: DagsterEnv, media_server):
    """The README's backfill block, run as a user copies it (bash), with the two YouTube videos
    swapped for clips on loopback (tests never leave 127.0.0.1)."""
    import os

    script = _readme_block("### Materialize and backfill from the dagster CLI")
    urls = [media_server.add(SAMPLE_MP4, f"readme-{n}.mp4") for n in (1, 2)]
    keys = [deployment.key(url) for url in urls]
    for youtube, url, key in zip(("dQw4w9WgXcQ", "jNQXAC9IVRw"), urls, keys, strict=True):
        script = script.replace(f"https://youtu.be/{youtube}", url).replace(youtube, key)
    assert "youtu" not in script and "uv run " in script
    script = script.replace("uv run ", "")  # the test's environment is the project's venv
    env = {**deployment.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DAGSTER_HOME")  # the block sets it itself
    # the script as an argument, not on stdin: a command in it that reads stdin (the dagster CLI
    # does) would otherwise eat the rest of the script
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, cwd=deployment.root,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Unknown partitions" not in proc.stdout + proc.stderr
    backfills = deployment.instance().get_backfills()
    assert backfills and sorted(backfills[0].partition_names) == sorted(keys)


@pytest.mark.slow
def test_status_sees_the_daemon_and_its_death_within_15_s(deployment: DagsterEnv):
    import time

    from igs_dagster.cli.run_report import TICK_FRESH_S

    status = json.loads(deployment.igs("status", "--json", check=True).stdout)
    assert status["daemon"]["running"] is True and deployment.daemon.pid in status["daemon"]["pids"]
    # the settings shown are the daemon's (its runs inherit them), not this shell's
    shell = {**deployment.env, "IGS_AGENT__TOOL": "codex", "OPENAI_API_KEY": "sk-shell-secret-1"}
    proc = subprocess.run([sys.executable, "-m", "igs_dagster.cli", "status"], env=shell,
                          capture_output=True, text=True, timeout=300, check=True)
    assert f"settings of the runs (daemon pid {deployment.daemon.pid}):" in proc.stdout
    assert "agent_tool   none" in proc.stdout and f"vault_dir    {deployment.vault}" in proc.stdout
    assert "sk-shell-secret-1" not in proc.stdout
    deployment.stop_daemon()
    stopped = time.monotonic()
    time.sleep(max(0.0, TICK_FRESH_S - (time.monotonic() - stopped)))
    out = deployment.igs("status", check=True).stdout
    assert "daemon: NOT running" in out, out  # heartbeats alone said "running" for 2 minutes
    sent = deployment.igs("send", "https://youtu.be/dQw4w9WgXcQ", check=True).stdout
    assert "no Dagster daemon is running here" in sent


@pytest.mark.slow
def test_ui_metadata_shows_real_files_model_name_and_obsidian_link(igs_env, media_server):
    import dagster as dg

    from igs_dagster.core.inbox import EventQueue, Source
    from igs_dagster.definitions import defs

    url = media_server.add(SAMPLE_MP4, "ui-meta.mp4")
    EventQueue(igs_env.queue_db).register_source(Source("ui-meta", "url", url, "web", None))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", ["ui-meta"])
        job = defs.resolve_job_def("video_ingest")
        assert job.execute_in_process(instance=instance, partition_key="ui-meta").success
        meta = {}
        for asset in ("video_download", "video_archive", "transcript", "vault_note", "enriched_summary"):
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
            meta[asset] = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert all("path" not in m for m in meta.values()), meta  # no row into Dagster's storage
    for asset, name in (("video_download", "media"), ("video_archive", "archive"),
                        ("transcript", "transcript"), ("vault_note", "note")):
        assert Path(meta[asset][name]).exists(), (asset, meta[asset])
    assert meta["transcript"]["model"] == "tiny.en"
    note = Path(meta["vault_note"]["note"]).relative_to(igs_env.vault_dir).with_suffix("")
    assert meta["enriched_summary"]["open_note"] == (
        f"obsidian://open?vault={igs_env.vault_dir.name}&file={str(note).replace('/', '%2F')}"
    )


def test_wait_names_check_steps_by_their_asset():
    from igs_dagster.cli.wait import step_label

    assert step_label("vault_note_vault_note_check") == "vault_note check"
    assert step_label("transcript") == "transcript"
    assert step_label("video_download_other_check") == "video_download_other_check"  # not its own check
