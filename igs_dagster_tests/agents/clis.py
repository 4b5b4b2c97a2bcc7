"""The real agent CLIs from npm (package.json here), pointed at the scripted model server.

`bin_dir()` is node_modules/.bin after `npm ci` in this folder (scripts/test does it).
`cli_env(tool, home, server_url)` builds the environment of one run: a temporary HOME (never
the user's config) holding the provider configuration each CLI reads:

- claude: `ANTHROPIC_BASE_URL` + `ANTHROPIC_API_KEY`, non-essential traffic off;
- codex: `$CODEX_HOME/config.toml` with a custom provider (`wire_api = "responses"`);
- pi: `~/.pi/agent/models.json` with an `openai-completions` provider, `settings.json`
  choosing it as the default, `PI_OFFLINE=1` (no update check).

Anything that is not for 127.0.0.1 goes to a dead proxy (`HTTPS_PROXY=http://127.0.0.1:9`),
so a CLI that tries to phone home fails fast instead of leaving the machine.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

HERE = Path(__file__).parent
TOOLS = ("pi", "claude", "codex")
MODEL = "scripted"
# codex takes tool shapes from its bundled model catalog: a known slug gets apply_patch
CODEX_MODEL = "gpt-5.5"
FAKE_KEY = "sk-scripted-test-key-0123456789"  # looks like a secret: the runner must redact it
DEAD_PROXY = "http://127.0.0.1:9"


def bin_dir() -> Path:
    return HERE / "node_modules" / ".bin"


def binary(tool: str) -> Path | None:
    path = bin_dir() / tool
    return path if path.exists() and os.access(path, os.X_OK) else None


def missing() -> list[str]:
    return [tool for tool in TOOLS if binary(tool) is None]


# the variables below that child_env would otherwise drop: the scripted provider's key (codex's
# `env_key`, pi's apiKey), the web-search extension's endpoint, Claude Code's switches, CI
PASSED_THROUGH = ("CI", "SCRIPTED_API_KEY", "WEB_SEARCH_RESULTS_URL", "DISABLE_AUTOUPDATER",
                  "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING")


def cli_env(tool: str, home: Path, server_url: str) -> dict[str, str]:
    """Environment for running `tool` against `server_url` with `home` as HOME (created)."""
    home.mkdir(parents=True, exist_ok=True)
    node_dir = shutil.which("node")
    path = os.pathsep.join(
        p for p in (str(bin_dir()), str(Path(node_dir).parent) if node_dir else "", os.defpath) if p
    )
    env = {
        "HOME": str(home),
        "PATH": path,
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "true",
        "HTTPS_PROXY": DEAD_PROXY,
        "HTTP_PROXY": DEAD_PROXY,
        "https_proxy": DEAD_PROXY,
        "http_proxy": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        # agents get the least environment (redact.child_env): names beyond its allowlist and
        # the agent's own prefixes pass only when listed here, as a user would list them
        "IGS_CHILD_ENV_ALLOW": ",".join(PASSED_THROUGH),
    }
    (home / "tmp").mkdir(exist_ok=True)
    if tool == "claude":
        env.update(
            {
                "ANTHROPIC_BASE_URL": server_url,
                "ANTHROPIC_API_KEY": FAKE_KEY,
                "ANTHROPIC_MODEL": MODEL,
                "ANTHROPIC_SMALL_FAST_MODEL": MODEL,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_ERROR_REPORTING": "1",
                "CLAUDE_CONFIG_DIR": str(home / ".claude"),
            }
        )
        # WebFetch asks claude.ai whether a domain is safe before fetching: not from here
        (home / ".claude").mkdir(exist_ok=True)
        (home / ".claude" / "settings.json").write_text(
            json.dumps({"skipWebFetchPreflight": True}), encoding="utf-8"
        )
    elif tool == "codex":
        codex_home = home / ".codex"
        codex_home.mkdir(exist_ok=True)
        (codex_home / "config.toml").write_text(
            f'model = "{CODEX_MODEL}"\n'
            'model_provider = "scripted"\n'
            "[model_providers.scripted]\n"
            'name = "scripted"\n'
            f'base_url = "{server_url}/v1"\n'
            'wire_api = "responses"\n'
            'env_key = "SCRIPTED_API_KEY"\n'
            "request_max_retries = 0\n"
            "stream_max_retries = 0\n",
            encoding="utf-8",
        )
        env.update({"CODEX_HOME": str(codex_home), "SCRIPTED_API_KEY": FAKE_KEY})
    elif tool == "pi":
        agent_dir = home / ".pi" / "agent"
        agent_dir.mkdir(parents=True, exist_ok=True)
        models = {
            "providers": {
                "scripted": {
                    "baseUrl": f"{server_url}/v1",
                    "api": "openai-completions",
                    "apiKey": "SCRIPTED_API_KEY",
                    "models": [
                        {
                            "id": MODEL,
                            "name": "Scripted",
                            "reasoning": False,
                            "input": ["text"],
                            "contextWindow": 200000,
                            "maxTokens": 8192,
                            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                        }
                    ],
                }
            }
        }
        (agent_dir / "models.json").write_text(json.dumps(models, indent=2), encoding="utf-8")
        # a user-installed web-search extension (see pi_extensions/web-search.ts)
        extensions = agent_dir / "extensions"
        extensions.mkdir(exist_ok=True)
        shutil.copy(HERE / "pi_extensions" / "web-search.ts", extensions / "web-search.ts")
        settings = {"defaultProvider": "scripted", "defaultModel": MODEL}
        (agent_dir / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
        env.update(
            {
                "PI_OFFLINE": "1",
                "SCRIPTED_API_KEY": FAKE_KEY,
                "WEB_SEARCH_RESULTS_URL": f"{server_url}/search",
            }
        )
    else:
        raise ValueError(f"unknown tool {tool!r}")
    return env
