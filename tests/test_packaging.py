"""The wheel is a real install: it carries the shipped models, installs only dualrec_tui and training at top
level, and the app it installs starts from any directory and logs a movie (no source checkout needed)."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# Runs inside the fresh venv, from a temporary directory: the installed app logs "Toy Story" headless.
DRIVER = """
import asyncio, sys
from pathlib import Path
import dualrec_tui
from dualrec_tui.app import DualrecApp
from dualrec_tui.config import Config
from dualrec_tui.core.artifacts import models_dir

assert Path(dualrec_tui.__file__).is_relative_to(Path(sys.prefix)), dualrec_tui.__file__
assert models_dir() == Path(dualrec_tui.__file__).parent / "_models", models_dir()

async def main() -> None:
    app = DualrecApp(Config(db_path=Path("watchlog.db"), llm_enabled=False))
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(3000):  # until the catalog and LSTM are loaded
            await pilot.pause(0.01)
            if app.models_loaded.is_set() and not any(w.is_running for w in app.workers):
                break
        assert app.hub.components["catalog"].state == "ready", app.hub.components
        assert app.hub.components["lstm"].state == "ready", app.hub.components
        await pilot.press(*"toy", "space", *"story")
        for _ in range(500):
            await pilot.pause(0.01)
            if app.main.query_one("#search").value == "toy story" and not any(w.is_running for w in app.workers):
                break
        await pilot.press("enter")
        for _ in range(1000):
            await pilot.pause(0.01)
            if app.watchlog.history() and not any(w.is_running for w in app.workers):
                break
        entries = app.watchlog.history()
        print("logged:", [(e.title, e.year) for e in entries])
        assert [(e.title, e.year) for e in entries] == [("Toy Story", 1995)]
        assert app.recs, "no recommendations after logging"

asyncio.run(main())
"""


def test_package_list_matches_the_source_tree() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("dualrec_tui", "training")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert mapped == {"dualrec_tui._models": "models"}


def test_extras_split_app_from_training() -> None:
    base = " ".join(PYPROJECT["project"]["dependencies"])
    for heavy in ("torch", "sentence-transformers", "transformers", "peft", "accelerate", "matplotlib", "gguf"):
        assert f'"{heavy}' not in base and not any(d.startswith(heavy) for d in PYPROJECT["project"]["dependencies"])
    train = " ".join(PYPROJECT["project"]["optional-dependencies"]["train"])
    for name in ("torch", "transformers", "peft", "accelerate", "sentence-transformers", "gguf", "sentencepiece"):
        assert name in train
    assert "tomli>=1.1; python_version < '3.11'" in PYPROJECT["project"]["dependencies"]
    assert PYPROJECT["project"]["scripts"] == {
        "dualrec-tui": "dualrec_tui.__main__:main",
        "dualrec-train": "training.__main__:main",
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a clean copy of the sources (no stale build/ folder can leak into it)."""
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.partial.npy")
    for name in ("dualrec_tui", "training", "models"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", out, src],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (built,) = out.glob("dualrec-*.whl")
    return built


def test_wheel_carries_the_models_and_nothing_else_at_top_level(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"dualrec_tui", "training", next(t for t in top if t.endswith(".dist-info"))}
    shipped = {
        "dualrec_tui/_models/" + path.relative_to(ROOT / "models").as_posix()
        for path in (ROOT / "models").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert shipped <= set(names), sorted(shipped - set(names))
    assert any(n.startswith("dualrec_tui/_models/catalog-embeddings-") for n in names)


def test_installed_wheel_starts_and_logs_a_movie_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # The dependencies come from the test environment's site-packages, added as plain paths (its .pth
    # files, e.g. an editable install of this checkout, are not run), after the venv's own site-packages.
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    Path(purelib).mkdir(parents=True, exist_ok=True)
    (Path(purelib) / "test-env.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--no-compile",
            "--ignore-installed",  # else pip uninstalls the test environment's own (editable) dualrec first
            "-q",
            "--prefix",
            venv,
            wheel,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    home = tmp_path / "home"
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "DUALREC_MODELS_DIR", "DUALREC_DB", "DUALREC_CONFIG", "DUALREC_LOG_DIR")
    }
    env |= {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    env |= {"XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache")}
    version = subprocess.run(
        [python, "-m", "dualrec_tui", "--version"], capture_output=True, text=True, cwd=work, env=env
    )
    assert version.returncode == 0 and version.stdout.startswith("dualrec-tui "), version.stderr
    run = subprocess.run([python, "-c", DRIVER], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "logged: [('Toy Story', 1995)]" in run.stdout
    assert (work / "watchlog.db").is_file()
