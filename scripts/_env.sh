# Shared by scripts/demo and scripts/test: make sure uv exists, install the locked environment
# (compiled to bytecode here, once), and link `igs` beside uv in ~/.local/bin.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
caller_path="$PATH"
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv (from PyPI)…" >&2
  # pip --user first; a Python that its distribution manages (PEP 668: Debian, Ubuntu, Homebrew)
  # refuses that, so then uv goes into a venv of its own, linked from ~/.local/bin
  if ! python3 -m pip install --quiet --user "uv==0.13.9" 2>/dev/null; then
    uv_venv="$HOME/.local/share/igs-dagster/uv-venv"
    if ! { python3 -m venv "$uv_venv" && "$uv_venv/bin/python" -m pip install --quiet "uv==0.13.9"; } >/dev/null 2>&1; then
      echo "could not install uv: install it (https://docs.astral.sh/uv/, or python3-venv on Debian/Ubuntu) and run this again" >&2
      exit 1
    fi
    mkdir -p "$HOME/.local/bin"
    ln -sfn "$uv_venv/bin/uv" "$HOME/.local/bin/uv"
  fi
fi
# compiled to bytecode here, once (not with pyproject's compile-bytecode, which makes every
# `uv run` compile the whole environment again: uv issue #12202)
uv sync --frozen --quiet --compile-bytecode
# `igs` on PATH wherever you are, so the commands igs's messages suggest work as written; a file
# that is not our link is left alone
mkdir -p "$HOME/.local/bin"
if [ ! -e "$HOME/.local/bin/igs" ] || [ -L "$HOME/.local/bin/igs" ]; then
  ln -sfn "$PWD/.venv/bin/igs" "$HOME/.local/bin/igs"
fi

# The set-up's last words: what a new shell needs for the README's commands.
setup_hint() {
  case ":$caller_path:" in
    *":$HOME/.local/bin:"*) return 0 ;;
  esac
  {
    echo
    echo "igs and uv are in ~/.local/bin, which is not on your PATH. For the README's commands in"
    echo "a new shell, run this line (and add it to ~/.profile or ~/.bashrc to keep it):"
    echo '  export PATH="$HOME/.local/bin:$PATH"'
  } >&2
}
