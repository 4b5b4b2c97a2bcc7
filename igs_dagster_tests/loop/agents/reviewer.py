#!/usr/bin/env python3
"""Stand-in reviewer: writes pytest tests from the acceptance criteria in the prompt only.

--tamper  also "fixes" an implementation file and drops a stray file (must be discarded)
"""

import re
import sys
from pathlib import Path

import standin

prompt = standin.read_prompt()
if "# Write tests for story" not in prompt:
    raise SystemExit("reviewer stand-in got a non-reviewer prompt")
tests_dir = re.search(r"Put the tests in `([^`]+)/`", prompt).group(1)
slug = re.search(r"names contain `([^`]+)`", prompt).group(1)
found = standin.criteria(prompt)
modules = sorted({module for module, *_ in found})
lines = [f"import {m}" for m in modules] + [""]
for number, (module, func, args, value) in enumerate(found, 1):
    lines += [
        "",
        f"def test_criterion_{number}():",
        f"    assert {module}.{func}({args}) == {value}",
        "",
    ]
folder = Path.cwd() / tests_dir
folder.mkdir(parents=True, exist_ok=True)
(folder / f"test_{slug}.py").write_text("\n".join(lines))
if "--tamper" in sys.argv:
    for module in modules:
        path = Path.cwd() / f"{module}.py"
        if path.exists():
            path.write_text(path.read_text() + "\n# reviewer was here\n")
    Path("reviewer_notes.txt").write_text("stray\n")
print(f"wrote {len(found)} tests to {tests_dir}/test_{slug}.py")
