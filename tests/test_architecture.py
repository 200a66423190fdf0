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
