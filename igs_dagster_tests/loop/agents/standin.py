"""Shared parts of the stand-in agents (plain Python, no third-party imports).

Criteria the stand-ins understand look like: "`calc.add(2, 3)` returns `5`".
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CRITERION = re.compile(r"`(\w+)\.(\w+)\((.*?)\)` returns `(.+?)`")

# function name -> (correct source, buggy source)
IMPLEMENTATIONS = {
    "add": ("def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"),
    "slugify": (
        "import re\n\n\ndef slugify(text):\n    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-')\n",
        "def slugify(text):\n    return text.lower()\n",
    ),
    "word_count": (
        "def word_count(text):\n    return len(text.split())\n",
        "def word_count(text):\n    return len(text.split(' '))\n",
    ),
    # needs textutil.slugify, which another story adds
    "greet": (
        "from textutil import slugify\n\n\ndef greet(name):\n    return 'hello-' + slugify(name)\n",
        "def greet(name):\n    return name\n",
    ),
}
PATTERN_LINE = "- Functions live in top-level modules named in the acceptance criteria."


def read_prompt() -> str:
    return sys.stdin.read()


def story_id(prompt: str) -> str:
    match = re.search(r"^# (?:Implement|Write tests for) story ([\w.-]+):", prompt, re.M)
    if not match:
        raise SystemExit("stand-in: no story id in the prompt")
    return match.group(1)


def criteria(prompt: str) -> list[tuple[str, str, str, str]]:
    return CRITERION.findall(prompt.split("## Acceptance criteria", 1)[-1].split("\n## ", 1)[0])


def write_function(root: Path, module: str, func: str, source: str) -> Path:
    """Put `source` between `# <func>` markers in `module.py` (replacing an older version)."""
    path = root / f"{module}.py"
    text = path.read_text() if path.exists() else ""
    block = f"# <{func}>\n{source}# </{func}>\n"
    pattern = re.compile(rf"# <{func}>\n.*?# </{func}>\n", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + block
    path.write_text(text)
    return path


def implement(root: Path, prompt: str, buggy: bool) -> list[str]:
    done = []
    for module, func, _args, _value in criteria(prompt):
        if func in done:
            continue
        good, bad = IMPLEMENTATIONS.get(
            func, (f"def {func}(*args):\n    raise NotImplementedError\n",) * 2
        )
        write_function(root, module, func, bad if buggy else good)
        done.append(func)
    progress = root / "progress.txt"
    if progress.exists() and PATTERN_LINE not in progress.read_text():
        text = progress.read_text()
        heading = "## Codebase patterns\n\n"
        progress.write_text(text.replace(heading, heading + PATTERN_LINE + "\n", 1))
    return done
