#!/usr/bin/env python3
"""Stand-in that must never run: records that it ran and fails.

--mark FILE  created when it runs
"""

import sys
from pathlib import Path

sys.stdin.read()
Path(sys.argv[sys.argv.index("--mark") + 1]).write_text("ran\n")
sys.exit(3)
