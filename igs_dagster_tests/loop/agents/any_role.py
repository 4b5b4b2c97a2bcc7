#!/usr/bin/env python3
"""Stand-in for every agent CLI at once (the README's "try the loop without an account"): the
reviewer stand-in for a reviewer prompt, the implementor stand-in for anything else. Plain
Python, no account, no network; it understands criteria like "`calc.add(2, 3)` returns `5`"."""

import os
import sys
import tempfile
from pathlib import Path

prompt = sys.stdin.read()
script = "reviewer.py" if "# Write tests for story" in prompt else "implementor.py"
feed = tempfile.TemporaryFile()  # the chosen stand-in reads the same prompt on its stdin
feed.write(prompt.encode())
feed.seek(0)
os.dup2(feed.fileno(), 0)
os.execv(sys.executable, [sys.executable, str(Path(__file__).with_name(script)), *sys.argv[1:]])
