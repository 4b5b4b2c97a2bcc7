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
    "intake": 3,          # CLI/API -> the router -> video/intake.py, loop/intake.py -> inbox
    "api": 4,
    "cli": 5,
}
PEERS = ("video", "loop")  # the pipelines: neither imports the other
PEERS_MAY_NOT_MIX = {(a, b) for a in PEERS for b in PEERS if a != b}


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


def _modules_imported(path: Path) -> set[str]:
    """The package's modules `path` imports: `from igs_dagster.video import intake` names
    igs_dagster.video.intake, `from igs_dagster.video.ids import slugify` igs_dagster.video.ids."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            folder = PACKAGE.parent.joinpath(*node.module.split("."))
            names = [f"{node.module}.{alias.name}" if (folder / f"{alias.name}.py").is_file()
                     or (folder / alias.name).is_dir() else node.module for alias in node.names]
        found.update(name for name in names if name.startswith("igs_dagster."))
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


def test_the_intake_router_knows_each_pipeline_only_by_its_intake():
    """intake.py routes events; validating and queueing them is each pipeline's own intake."""
    reached = sorted({name for name in _modules_imported(PACKAGE / "intake.py")
                      if _top(name) in PEERS and name != f"igs_dagster.{_top(name)}.intake"})
    assert not reached, f"the router reaches into pipeline internals: {reached}"
    for pipeline in PEERS:
        assert (PACKAGE / pipeline / "intake.py").is_file(), f"{pipeline}/ has no intake.py"


def test_no_assert_decides_anything_in_the_package():
    """`python -O` drops asserts: a check the code relies on is an `if` that raises."""
    found = [f"{path.relative_to(PACKAGE)}:{node.lineno}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(), str(path)))
             if isinstance(node, ast.Assert)]
    assert not found, f"assert statements in the package: {found}"


def test_no_module_over_500_lines():
    """One room per concern: a module that grows past 500 lines holds more than one."""
    big = {str(path.relative_to(PACKAGE)): n for path in sorted(PACKAGE.rglob("*.py"))
           if (n := len(path.read_text().splitlines())) > 500}
    assert not big, f"modules over 500 lines (split them along their concerns): {big}"
