"""Issue 26, item 2: a failure keeps its cause. A video whose host refuses the connection and
one whose host name does not resolve, sent with `igs send --wait` to a real daemon: every retry
shows as it happens ("attempt 2 of 4 in 10 s: <cause>"), and the end, `igs videos`,
`igs status`, `igs run --json` and the notification all say why the last attempt failed and
after how many attempts, not Dagster's "Exceeded max_retries of 3".

The daemon and its run workers live in a network namespace of their own that has only a
loopback interface: 127.0.0.1 there has nothing listening (refused), and a name under the
reserved `.invalid` top-level domain cannot reach any DNS server, so no packet of this test
leaves the machine (checked: the namespace has no other interface).
"""

from __future__ import annotations

import json
import re

import pytest

from igs_dagster_tests.dagster_env import DagsterEnv
from igs_dagster_tests.netns import LoopbackOnlyNetwork

pytestmark = pytest.mark.slow

REFUSED = "http://127.0.0.1:9/talk.mp4"  # the discard port: nothing listens in the namespace
UNRESOLVABLE = "http://media.igs-test.invalid/talk.mp4"  # RFC 2606: never resolves
REFUSED_CAUSE = re.compile(r"connection refused", re.I)  # the port, not the address fence
DNS_CAUSE = re.compile(r"resolv|name or service not known|name resolution|getaddrinfo", re.I)


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory):
    net = LoopbackOnlyNetwork()
    dep = None
    try:
        dep = DagsterEnv.create(tmp_path_factory.mktemp("failure-cause"))
        dep.start_daemon(prefix=net.prefix)
        yield dep, net
    finally:
        if dep is not None:
            dep.stop_daemon()
        net.close()


def test_wait_shows_retries_live_and_every_view_keeps_the_cause(isolated):
    dep, net = isolated
    refused, unresolvable = dep.key(REFUSED), dep.key(UNRESOLVABLE)
    proc = dep.igs("send", "--wait", "--timeout", "400", REFUSED, UNRESOLVABLE, timeout=500)
    print(f"\n$ igs send --wait {REFUSED} {UNRESOLVABLE}   # exit {proc.returncode}\n{proc.stdout}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()

    def retries(key: str) -> list[str]:
        return [line for line in lines if line.startswith(f"{key}: video_download: attempt ")]

    # each retry as it is decided: the attempt that comes, of how many, when, and why
    for key, cause in ((refused, REFUSED_CAUSE), (unresolvable, DNS_CAUSE)):
        seen = retries(key)
        assert [int(line.split("attempt ")[1].split()[0]) for line in seen] == [2, 3, 4], proc.stdout
        assert all(re.search(r"attempt \d of 4 in \d+ s: ", line) and cause.search(line)
                   for line in seen), seen
    # the end of each: the cause of the last attempt and how many were made, not Dagster's wrapper
    ends = {key: next(line for line in lines if line.startswith(f"{key}: failed: "))
            for key in (refused, unresolvable)}
    assert REFUSED_CAUSE.search(ends[refused]) and DNS_CAUSE.search(ends[unresolvable])
    for key, end in ends.items():
        assert "Exceeded max_retries" not in end and "(after 4 attempts)" in end, end
        assert end.startswith(f"{key}: failed: video_download: ") and end.endswith(f"`igs retry {key}`")
    assert "Exceeded max_retries" not in proc.stdout

    # igs videos, igs status, igs run --json: the same cause
    videos = {v["key"]: v for v in json.loads(dep.igs("videos", "--json", check=True).stdout)}
    assert REFUSED_CAUSE.search(videos[refused]["reason"])
    assert DNS_CAUSE.search(videos[unresolvable]["reason"])
    assert all("(after 4 attempts)" in videos[k]["reason"] for k in (refused, unresolvable))
    status = json.loads(dep.igs("status", "--json", check=True).stdout)
    errors = {f["partition"]: f["errors"]["video_download"] for f in status["recent_failures"]}
    assert REFUSED_CAUSE.search(errors[refused]) and DNS_CAUSE.search(errors[unresolvable])
    run_id = videos[unresolvable]["run_id"]
    detail = json.loads(dep.igs("run", run_id, "--json", check=True).stdout)
    download = next(s for s in detail["steps"] if s["step"] == "video_download")
    assert download["attempts"] == 4 and DNS_CAUSE.search(download["error"])
    assert "Exceeded max_retries" not in json.dumps(detail) + json.dumps(status)

    # the notification the sensor sends for it: the cause and a retry command that works as written
    from igs_dagster.core.settings import load_settings
    from igs_dagster.defs.system.notify_sensors import video_failed

    instance = dep.instance()
    with dep.activated():
        message = video_failed(instance, instance.get_run_by_id(run_id), load_settings())
    assert DNS_CAUSE.search(message.body) and "(after 4 attempts)" in message.body
    assert message.body.endswith(f"\nretry: igs retry {unresolvable}")
    assert "Exceeded max_retries" not in message.body

    # the system log's line for the step, written by the daemon's sensor: the same cause
    log = dep.vault / "system" / "system-log.jsonl"

    def logged() -> dict | None:
        lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
        return {e["partition"]: e["reason"] for e in lines if e["action"] == "video.download.failed"} or None

    reasons = dep.wait_for(lambda: (r := logged()) and len(r) == 2 and r, 120, "the system log lines")
    assert REFUSED_CAUSE.search(reasons[refused]) and DNS_CAUSE.search(reasons[unresolvable])
    assert all(r.endswith("(after 4 attempts)") for r in reasons.values()), reasons

    # nothing of it could leave the machine: the daemon's namespace has loopback only
    assert [line.split(":")[1].strip() for line in net.links().splitlines()] == ["lo"]
