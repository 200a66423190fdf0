"""Where models and caches live, and the manifests that describe shipped artifacts.

Shipped defaults live in the repository's `models/` folder (installed editable by `make install`);
`DUALREC_MODELS_DIR` points elsewhere (for example at the output of `python -m training all`).
Caches (catalog embeddings, a GGUF built on first use) go to the platform cache directory,
overridable by `DUALREC_CACHE_DIR`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import ModelUnavailableError

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def models_dir() -> Path:
    """The folder holding catalog.json, lstm/, llm/ (env DUALREC_MODELS_DIR overrides)."""
    override = os.environ.get("DUALREC_MODELS_DIR")
    return Path(override).expanduser() if override else PACKAGE_ROOT / "models"


def cache_dir() -> Path:
    override = os.environ.get("DUALREC_CACHE_DIR")
    if override:
        path = Path(override).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("dualrec", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_data_dir() -> Path:
    """MovieLens releases for training and evaluation (env DUALREC_DATA_DIR, else ../shared/data)."""
    override = os.environ.get("DUALREC_DATA_DIR")
    return Path(override).expanduser() if override else PACKAGE_ROOT.parent / "shared" / "data"


def read_manifest(directory: Path, what: str, rebuild: str) -> dict[str, Any]:
    """Read `manifest.json` of an artifact folder, or explain what is missing and how to rebuild it."""
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise ModelUnavailableError(what, f"no manifest at {path}", rebuild)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(what, f"unreadable manifest {path}: {exc}", rebuild) from exc


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = Path(directory) / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
