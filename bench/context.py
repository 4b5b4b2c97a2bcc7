"""The state one benchmark invocation shares between figures: mode, folders, clips, logging."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import speech
from bench.common import PYTHON, REPO
from igs_dagster.core.local_http import FolderServer
from igs_dagster_tests.media import JFK_TEXT, SAMPLE_MP4, repeat_clip  # noqa: F401 - re-exported


@dataclass
class Context:
    quick: bool
    work: Path  # scratch folder for this invocation (deployments, servers, outputs)
    cache: Path  # generated speech, bytecode
    runs: int  # repetitions of each side-by-side measurement
    long_minutes: float  # figures 4 and 6
    verbose: bool = True
    shared: dict[str, Any] = field(default_factory=dict)  # results reused by several figures
    stack: ExitStack = field(default_factory=ExitStack)  # closed when the invocation ends

    def deployment(self) -> Any:
        """The deployment figures 1, 3, 4, 6 and 7 share (one daemon start), with its media
        server: (DagsterEnv, FolderServer, DagsterInstance). Stopped when the invocation ends."""
        if "deployment" not in self.shared:
            from bench import deploy
            from bench.fig7_loop import agent_env

            root = self.folder("deployment")
            srv = self.stack.enter_context(FolderServer(root / "served"))
            dep = self.stack.enter_context(deploy.deployment(root / "dep", **agent_env(root)))
            instance = dep.instance()
            dep.wait_for(lambda: instance.all_instigator_state(), 180, "the daemon's first tick")
            self.shared["deployment"] = (dep, srv, instance)
        return self.shared["deployment"]

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def folder(self, name: str) -> Path:
        path = self.work / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def speech(self, seconds: float, seed: int = 1) -> speech.Clip:
        """A cached clip of realistic speech (espeak-ng); SpeechUnavailable if it cannot be made."""
        key = ("speech", int(seconds), seed)
        if key not in self.shared:
            started = time.perf_counter()
            clip = speech.build_speech(seconds, seed, self.cache / "speech")
            took = time.perf_counter() - started
            if took > 1:
                self.log(f"generated {clip.seconds:.0f} s of speech (seed {seed}) in {took:.0f} s")
            self.shared[key] = clip
        return self.shared[key]

    def speech_in(self, language: str, seconds: float, seed: int = 1) -> speech.Clip:
        """Like `speech`, in another language espeak-ng speaks (`speech.LANGUAGES`)."""
        key = ("speech", language, int(seconds), seed)
        if key not in self.shared:
            self.shared[key] = speech.build_speech(seconds, seed, self.cache / "speech", language)
        return self.shared[key]

    def repeated(self, src: Path, times: int) -> Path:
        return repeat_clip(src, times, self.cache / "speech" / f"{src.stem}-x{times}.mp4")




def use_bytecode_cache(cache: Path) -> None:
    """Let every Python process of the benchmark (both sides) keep compiled bytecode, as the
    Docker image does (UV_COMPILE_BYTECODE=1), instead of recompiling every import."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(cache / "pycache")


def warm_up() -> float:
    """Import everything once (fills the bytecode cache and the page cache); seconds taken."""
    started = time.perf_counter()
    subprocess.run(
        [PYTHON, "-c", "import igs_dagster.definitions, igs_dagster.cli, faster_whisper, "
         "bench.direct, igs_dagster.video.enrich, dagster._daemon, dagster._cli"],
        cwd=REPO, check=True, capture_output=True, timeout=600,
    )
    return time.perf_counter() - started
