"""Issue 26, items 4 and 6: the README's commands, and every command an `igs` message suggests,
work as written in a fresh login shell after the set-up.

A new home folder (no profile, no PATH of ours) gets the set-up (`bash scripts/demo`, with the
uv binary already in ~/.local/bin where the set-up installs it: the test never reaches PyPI).
The set-up ends by printing the line a shell needs; every later command runs in a fresh
`env -i HOME=… bash -lc` that runs only that line first. `igs dev` runs as the README says,
on its default port, inside a network namespace of the test's own (only loopback: port 3000
is free there whatever else runs, and nothing leaves the machine).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from igs_dagster_tests.conftest import SAMPLE_MP4, unavailable
from igs_dagster_tests.dagster_env import REPO
from igs_dagster_tests.netns import LoopbackOnlyNetwork

pytestmark = pytest.mark.slow
README = REPO / "README.md"
# README table commands that need no network, no running work and no argument to fill in
SAFE = ("igs send --dry-run", "igs videos", "igs search", "igs status", "igs runs", "igs settings",
        "igs log tail", "igs service install --print", "igs following")
# what an igs message may ask to run, by its first word
PROGRAMS = ("igs ", "git ", "mkdir ", "openssl ")


class Fresh:
    """A home folder after the set-up, and fresh login shells in the loopback-only namespace."""

    def __init__(self, home: Path, net: LoopbackOnlyNetwork, path_line: str):
        self.home, self.net, self.path_line = home, net, path_line

    def popen(self, command: str, cwd: Path | None = None, log: Path | None = None) -> subprocess.Popen:
        """`log`: the output goes to that file (a long-running service: a pipe nobody reads
        would fill and block it)."""
        script = f"{self.path_line}\ncd {shlex.quote(str(cwd or self.home))}\n{command}"
        out = open(log, "ab") if log else subprocess.PIPE  # noqa: SIM115 - closed with the process
        return subprocess.Popen([*self.net.prefix, "env", "-i", f"HOME={self.home}", "bash", "-lc",
                                 script], stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE,
                                text=not log, start_new_session=True)

    def start_service(self) -> None:
        """`igs dev`, exactly as the README and the messages say, unless it runs already."""
        if _service_pid(self.home) is None:
            self.popen("exec igs dev", log=self.home / "igs-dev.log")
            _wait(lambda: _service_pid(self.home), 300, "igs dev's webserver record")

    def run(self, command: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = self.popen(command, cwd)
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(command, proc.returncode, out, err)

    @property
    def data(self) -> Path:
        return self.home / ".local" / "share" / "igs-dagster"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory):
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(uv).is_file():
        unavailable("uv is not installed (scripts/test installs it)")
    home = tmp_path_factory.mktemp("fresh-home")
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "uv").symlink_to(uv)  # where the set-up's `pip --user` puts it
    # a user who uses git has a name for their commits (the loop's merge hint makes one)
    (home / ".gitconfig").write_text("[user]\n\tname = New User\n\temail = new@example.com\n")
    # the test's media servers are on loopback, which downloads may not reach by default (issue 23)
    (home / ".config" / "igs").mkdir(parents=True)
    (home / ".config" / "igs" / "config.toml").write_text('[network]\nallow = ["127.0.0.0/8"]\n')
    # uv's package cache stays the machine's: offline, it holds what a rebuild of the project
    # itself would need (hatchling)
    cache = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()
    net = LoopbackOnlyNetwork()
    try:
        # the README's set-up command, in a login shell of the new account
        setup = subprocess.run(
            [*net.prefix, "env", "-i", f"HOME={home}", "UV_OFFLINE=1", f"UV_CACHE_DIR={cache}", "bash", "-lc",
             f"cd {shlex.quote(str(REPO))} && bash scripts/demo"],
            capture_output=True, text=True, timeout=900)
        assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
        note = Path(setup.stdout.strip().splitlines()[-1])
        assert note.is_file() and note.is_relative_to(home / "igs-vault")
        hint = setup.stderr.rstrip().splitlines()
        print("$ bash scripts/demo   # last lines\n" + "\n".join([str(note), *hint[-4:]]))
        assert hint[-3].startswith("igs and uv are in ~/.local/bin, which is not on your PATH")
        path_line = hint[-1].strip()
        assert path_line == 'export PATH="$HOME/.local/bin:$PATH"'
        assert "Bytecode compiled" not in setup.stderr  # compiled once, quietly
        yield Fresh(home, net, path_line)
    finally:  # also when the set-up failed: no namespace holder left behind
        service = _service_pid(home)
        if service:
            subprocess.run(["kill", "-TERM", str(service)], check=False)
        net.close()


def _service_pid(home: Path) -> int | None:
    try:
        return json.loads((home / ".local/share/igs-dagster/webserver.json").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _readme_block(heading: str) -> str:
    return README.read_text().split(heading, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]


def _table_commands() -> list[str]:
    """The README's Daily-use commands that can run anywhere as written."""
    table = README.read_text().split("## Daily use", 1)[1].split("\n### ", 1)[0]
    found = []
    for span in re.findall(r"`(igs [^`]+)`", table):
        if span.startswith(SAFE):
            span = span.replace(" --follow", "").replace("URL", "'https://youtu.be/dQw4w9WgXcQ'")
            found.append(span)
    return found


def test_readme_commands_in_a_fresh_shell(fresh: Fresh):
    # without the line the set-up printed, the README's commands fail: the reason for the line
    bare = subprocess.run([*fresh.net.prefix, "env", "-i", f"HOME={fresh.home}", "bash", "-lc",
                           "uv --version; igs --help"], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 127 and "command not found" in bare.stderr
    commands = _table_commands()
    assert len(commands) >= 8, commands
    for command in commands + ['export DAGSTER_HOME="$(igs settings --dagster-home)" && test -d "$DAGSTER_HOME"',
                               f"cd {shlex.quote(str(REPO))} && uv run igs settings --dagster-home"]:
        proc = fresh.run(command)
        print(f"$ {command}   # exit {proc.returncode}\n{proc.stdout[-400:]}{proc.stderr[-400:]}")
        assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-2000:])
        assert "command not found" not in proc.stderr
        if not command.startswith("cd "):  # `igs`, not `uv run`: no environment check on every call
            assert "Bytecode compiled" not in proc.stderr
    found = json.loads(fresh.run("igs search 'what you can do for your country' --json").stdout)
    assert found and found[0]["slug"] == "jfk-inaugural-address-excerpt-1961"

    # `igs dev` as written (the daemon every message asks for), then the README's loop block
    fresh.start_service()
    block = _readme_block("### Try the loop without an account")
    proc = fresh.run(block, cwd=REPO)
    print(f"$ <the README's loop block>   # exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    loop_id = re.search(r"queued loop (loop-[\w-]+)", proc.stdout)[1]
    _wait(lambda: " complete " in fresh.run("igs loop status").stdout, 300, "the loop to complete")
    status = fresh.run(f"igs loop status {loop_id}").stdout
    print(f"$ igs loop status {loop_id}\n{status}")
    assert "1 passed, 0 skipped, 0 failed of 1" in status
    # the commands `igs loop status` suggests (look at, merge the branch) work as written
    hints = [re.sub(r"^(look|merge):", "", line).strip() for line in status.splitlines()]
    hints = [h for h in hints if h.startswith("git -C")]
    assert len(hints) == 3, status
    for command in hints:
        proc = fresh.run(command)
        print(f"$ {command}   # suggested; exit {proc.returncode}\n{proc.stdout[-600:]}")
        assert proc.returncode == 0, (command, proc.stderr)
    assert (fresh.home / "igs-loop-try/project/calc.py").read_text().count("def add") == 1


def _suggested(text: str) -> list[str]:
    return [c for c in re.findall(r"`([^`]+)`", text) if c.startswith(PROGRAMS)]


def _state(fresh: Fresh, key: str) -> tuple[str, str | None]:
    """(status, run id) of a video, as `igs videos --json` says."""
    proc = fresh.run("igs videos --json")
    try:
        videos = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"igs videos --json: {proc.stdout[-1000:]} {proc.stderr[-1000:]}") from None
    return next(((v["status"], v["run_id"]) for v in videos if v["key"] == key), ("unknown", None))


def test_every_command_a_message_suggests_works_as_written(fresh: Fresh, tmp_path: Path):
    import os

    fresh.start_service()
    served = tmp_path / "served"
    served.mkdir()
    server = subprocess.Popen([*fresh.net.prefix, "python3", "-m", "http.server", "8123", "--bind",
                               "127.0.0.1", "-d", str(served)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    ran: list[str] = []

    def run_suggested(output: str) -> None:
        for command in _suggested(output):
            if command == "igs dev":  # run as written by the test above; a second one is refused
                continue
            proc = fresh.run(command)
            ran.append(command)
            print(f"$ {command}   # suggested; exit {proc.returncode}\n{proc.stdout[-600:]}{proc.stderr[-600:]}")
            assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-2000:])

    probe = "python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8123/')\""
    try:
        _wait(lambda: fresh.run(probe).returncode == 0, 30, "the loopback media server")
        # 1. a failed video (404): `igs retry KEY`, as the failure line and the notification say
        url = "http://127.0.0.1:8123/late-talk.mp4"
        failed = fresh.run(f"igs send --wait {url}")
        print(f"$ igs send --wait {url}   # exit {failed.returncode}\n{failed.stdout}")
        assert failed.returncode == 1
        key = re.search(r"`igs retry ([\w-]+)`", failed.stdout)[1]
        first = _state(fresh, key)
        run_suggested(failed.stdout)  # igs retry KEY: queued, and it fails again (still 404)
        _wait(lambda: (s := _state(fresh, key))[0] == "failed" and s != first, 120, "the retry to end")
        # 2. the vault moved away: the note step says how to start a new vault on purpose
        shutil.copyfile(SAMPLE_MP4, served / "late-talk.mp4")
        (fresh.home / "igs-vault").rename(fresh.home / "igs-vault-away")
        missing = fresh.run(f"igs retry --wait {key}")
        print(f"$ igs retry --wait {key}   # vault away, exit {missing.returncode}\n{missing.stdout}")
        assert "is missing (igs wrote notes there before" in missing.stdout
        assert not (fresh.home / "igs-vault").exists()
        run_suggested(missing.stdout)  # mkdir -p … && touch …/.igs-vault, then igs retry KEY
        assert (fresh.home / "igs-vault" / ".igs-vault").is_file()
        _wait(lambda: _state(fresh, key)[0] == "done", 180, "the retry after the new vault")
        # 3. Ctrl-C while waiting: `igs send --wait URL` follows it again
        shutil.copyfile(SAMPLE_MP4, served / "talk(1).mp4")  # a URL that needs quoting in a shell
        waiting = fresh.popen("igs send --wait 'http://127.0.0.1:8123/talk(1).mp4'")
        seen = ""
        deadline = time.monotonic() + 120
        while " started" not in seen and time.monotonic() < deadline:
            seen += waiting.stdout.readline()
        os.killpg(waiting.pid, signal.SIGINT)
        rest, err = waiting.communicate(timeout=60)
        print(f"$ igs send --wait …   # ^C\n{seen}{rest}{err}")
        assert waiting.returncode == 130 and "stopped waiting; the work goes on" in rest
        run_suggested(rest)  # igs send --wait URL (to the note), igs videos
        # 4. a video never sent: `igs send …`
        never = fresh.run("igs retry https://youtu.be/abcdefghijk")
        assert never.returncode == 2
        run_suggested(never.stderr)
    finally:
        server.terminate()
        server.wait(10)
    print("ran as suggested:\n" + "\n".join(ran))
    assert any(c.startswith("igs retry ") for c in ran) and any(c.startswith("mkdir -p ") for c in ran)
    assert any(c.startswith("igs send --wait ") for c in ran) and any(c.startswith("igs send https") for c in ran)
