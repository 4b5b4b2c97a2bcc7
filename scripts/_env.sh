# Shared by scripts/demo and scripts/test: make sure uv exists, then install the locked environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv (from PyPI)…" >&2
  python3 -m pip install --quiet --user "uv==0.13.9" 2>/dev/null || python3 -m pip install --quiet "uv==0.13.9"
fi
uv sync --frozen --quiet
