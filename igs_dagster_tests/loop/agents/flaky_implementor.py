#!/usr/bin/env python3
"""Stand-in implementor that fails its first run and passes the second.

--state FILE  counts the runs (kept outside the worktree)
"""

import sys
from pathlib import Path

import standin

state = Path(sys.argv[sys.argv.index("--state") + 1])
runs = int(state.read_text()) if state.exists() else 0
state.write_text(str(runs + 1))
prompt = standin.read_prompt()
done = standin.implement(Path.cwd(), prompt, buggy=runs == 0)
print(f"run {runs + 1}: implemented {', '.join(done)} ({'buggy' if runs == 0 else 'fixed'})")
