#!/usr/bin/env python3
"""Stand-in agent that hangs: writes a partial file, starts a child, ignores SIGTERM, sleeps.

--pids FILE  where to write "agent_pid child_pid"
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

sys.stdin.read()
Path("partial_work.py").write_text("# half done\n")
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # noqa: S603
pids = Path(sys.argv[sys.argv.index("--pids") + 1])
pids.write_text(f"{__import__('os').getpid()} {child.pid}")
print("working...", flush=True)
time.sleep(600)
