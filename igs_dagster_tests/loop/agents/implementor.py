#!/usr/bin/env python3
"""Stand-in implementor: writes the functions the acceptance criteria name.

--buggy   write a wrong implementation
--commit  commit the work itself (with its own message)
"""

import subprocess
import sys
from pathlib import Path

import standin

prompt = standin.read_prompt()
sid = standin.story_id(prompt)
done = standin.implement(Path.cwd(), prompt, buggy="--buggy" in sys.argv)
print(f"implemented {sid}: {', '.join(done) or 'nothing'}")
if "--commit" in sys.argv:
    subprocess.run(["git", "add", "-A"], check=True)  # noqa: S603, S607
    subprocess.run(["git", "commit", "-q", "-m", f"{sid}: implemented by the stand-in"], check=True)  # noqa: S603, S607
