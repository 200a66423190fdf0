"""The import rules of docs/architecture.md, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_and_training_never_import_the_app_or_textual() -> None:
    core = [p.stem for p in (ROOT / "dualrec_tui" / "core").glob("*.py") if p.stem != "__init__"]
    training = [p.stem for p in (ROOT / "training").glob("*.py") if p.stem not in {"__init__", "__main__"}]
    imports = "\n".join(
        [f"import dualrec_tui.core.{name}" for name in core] + [f"import training.{name}" for name in training]
    )
    loaded = _modules_after(imports)
    assert "textual" not in loaded
    app_modules = {m for m in loaded if m.startswith("dualrec_tui.") and not m.startswith("dualrec_tui.core")}
    assert app_modules == set()


def test_core_imports_no_heavy_library_at_import_time() -> None:
    core = [p.stem for p in (ROOT / "dualrec_tui" / "core").glob("*.py") if p.stem != "__init__"]
    loaded = _modules_after("\n".join(f"import dualrec_tui.core.{name}" for name in core))
    heavy = {"torch", "llama_cpp", "sentence_transformers", "transformers", "peft"}
    assert heavy & loaded == set()


def test_training_cli_help_is_fast_to_import() -> None:
    loaded = _modules_after("import training.__main__")
    assert {"torch", "llama_cpp", "sentence_transformers", "transformers", "textual"} & loaded == set()


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of every module `path` imports, at any depth of the file (lazy imports too)."""
    import ast

    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            prefix = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, [prefix, node.module or ""]))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_screens_and_widgets_never_import_the_app() -> None:
    """Screens and widgets post messages; the app wires them (an import of the app would be a cycle)."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m == "dualrec_tui.app")
        for folder in ("screens", "widgets")
        for path in (ROOT / "dualrec_tui" / folder).glob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_app_sees_one_recommendation_type() -> None:
    """The pipeline's events reach the app as they are: no second Recommendation class above the core."""
    import ast

    defined = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "dualrec_tui").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name == "Recommendation"
    }
    assert defined == {"dualrec_tui/core/pipeline.py"}


def _store_imports() -> dict[str, set[str]]:
    """Each module of dualrec_tui/store and the store modules it imports, wherever the import statement is
    (top level, inside a function, or under TYPE_CHECKING: a type-only cycle is still a knot to untie).

    `from . import x` names the module x; `from . import y` where y is not a module names the package."""
    import ast

    package_root = ROOT / "dualrec_tui"
    modules = {}
    for path in (package_root / "store").rglob("*.py"):
        parts = ("dualrec_tui", *path.relative_to(package_root).with_suffix("").parts)
        modules[".".join(parts[:-1] if path.name == "__init__.py" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
                for alias in node.names:
                    edges.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {target for target in edges if target in modules and target != name}
    return graph


def test_store_modules_have_no_import_cycle() -> None:
    """db <-> importers <-> exporters was a cycle (issue 14): the store's modules import one way only."""
    graph = _store_imports()
    assert {"dualrec_tui.store.db", "dualrec_tui.store.importing.apply", "dualrec_tui.store.exporters"} <= set(graph)
    assert "dualrec_tui.store.importing.apply" in graph["dualrec_tui.store.db"]  # lazy imports are seen too
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in path:
                loop = [*path[path.index(target) :], target]
                raise AssertionError("import cycle in the store: " + " -> ".join(loop))
            if target not in done:
                visit(target, [*path, target])
        done.add(name)

    for name in sorted(graph):
        visit(name, [name])


def test_the_app_paints_before_numpy_loads() -> None:
    """The first frame needs Textual and the store's locators only; numpy (and everything that needs it:
    the pipeline, fusion, the LSTM) loads with the models, after the screen is up."""
    loaded = _modules_after("import dualrec_tui.app")
    assert {"numpy", "dualrec_tui.core.pipeline", "dualrec_tui.core.fusion"} & loaded == set()
