"""The package reads top-down: no import runs back up the layers (README "How it is built")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "igs_dagster"
# lower number = lower layer; a module may import its own layer's siblings and anything below
LAYERS = {
    "core": 0,            # shared: settings, inbox, files, processes, system log
    "video": 1,           # pipeline cores, no Dagster
    "loop": 1,
    "defs": 2,            # Dagster wiring
    "dagster_compat": 2,  # Dagster's private names, behind one door (used by defs/ and cli/)
    "definitions": 3,
    "intake": 3,          # CLI/API -> inbox
    "api": 4,
    "cli": 5,
}
PEERS_MAY_NOT_MIX = {("video", "loop"), ("loop", "video")}


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "igs_dagster" and len(parts) > 1 else None


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            if node.module == "igs_dagster":
                found += [f"igs_dagster.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def test_every_module_sits_in_a_known_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py")
            for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE}
    assert tops <= set(LAYERS), f"new top-level module(s) without a layer: {tops - set(LAYERS)}"


def test_no_import_runs_back_up():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if me not in LAYERS:
            continue
        for name in _imports(path):
            other = _top(name)
            if other is None or other == me or other not in LAYERS:
                continue
            if LAYERS[other] > LAYERS[me] or (me, other) in PEERS_MAY_NOT_MIX:
                upward.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_pipeline_cores_and_shared_code_do_not_import_dagster():
    offenders = [
        str(path.relative_to(PACKAGE))
        for layer in ("core", "video", "loop")
        for path in (PACKAGE / layer).rglob("*.py")
        if any(name == "dagster" or name.startswith("dagster.") for name in _imports(path))
    ]
    assert not offenders, f"plain modules importing dagster: {offenders}"
