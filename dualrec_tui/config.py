"""App settings: a small TOML file in the platform config folder, overridable by env and CLI flags.

Precedence, strongest first: command-line flag > environment variable > config file > default.
- config file: `DUALREC_CONFIG`, else `<user config dir>/dualrec/config.toml`
- watch log:   `--db PATH`, `DUALREC_DB`, `db_path` in the file, else `<user data dir>/dualrec/watchlog.db`
- models:      `--models DIR`, `DUALREC_MODELS_DIR`, `models_dir` in the file, else the shipped `models/`
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .core.errors import DataFormatError

APP_NAME = "dualrec"


def config_path() -> Path:
    """Where the settings file lives (env DUALREC_CONFIG overrides)."""
    override = os.environ.get("DUALREC_CONFIG")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def default_db_path() -> Path:
    """The watch log (env DUALREC_DB overrides)."""
    override = os.environ.get("DUALREC_DB")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False)) / "watchlog.db"


def default_models_dir() -> Path:
    from .core.artifacts import models_dir

    return models_dir()


@dataclass(frozen=True)
class Config:
    """Everything a user can set. `None` paths mean "use the default location"."""

    db_path: Path | None = None
    models_dir: Path | None = None
    n_recommendations: int = 10
    llm_enabled: bool = True
    gpu_layers: int = -1  # llama.cpp n_gpu_layers (0 = CPU only, -1 = all that fit; ignored without a GPU)
    threads: int = 0  # llama.cpp threads (0 = let the library decide)
    theme: str = "textual-dark"

    # ------------------------------------------------------------- resolution
    @property
    def resolved_db_path(self) -> Path:
        return self.db_path if self.db_path is not None else default_db_path()

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else default_models_dir()

    def validated(self, source: str = "settings") -> Config:
        """Check ranges, so a bad file says what is wrong instead of breaking a model later."""
        problems = []
        if not 1 <= self.n_recommendations <= 50:
            problems.append(f"n_recommendations must be 1..50, got {self.n_recommendations}")
        if self.gpu_layers < -1:
            problems.append(f"gpu_layers must be -1 (all) or more, got {self.gpu_layers}")
        if self.threads < 0:
            problems.append(f"threads must be 0 (auto) or more, got {self.threads}")
        if problems:
            raise DataFormatError(source, None, "; ".join(problems))
        return self

    # ----------------------------------------------------------------- files
    @classmethod
    def load(cls, path: Path | None = None, apply_env: bool = True) -> Config:
        """Read the settings file; a missing file gives the defaults (env overrides apply unless told not to)."""
        path = path or config_path()
        values: dict[str, Any] = {}
        if path.is_file():
            values = _read_toml(path)
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise DataFormatError(path, None, f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            kwargs[name] = _coerce(path, name, value, cls.__dataclass_fields__[name].default)
        config = cls(**kwargs).validated(str(path))
        # Environment overrides beat the file (the CLI applies its flags afterwards with `replace`).
        if not apply_env:
            return config
        if os.environ.get("DUALREC_DB"):
            config = replace(config, db_path=default_db_path())
        if os.environ.get("DUALREC_MODELS_DIR"):
            config = replace(config, models_dir=Path(os.environ["DUALREC_MODELS_DIR"]).expanduser())
        return config

    def save(self, path: Path | None = None) -> Path:
        """Write the settings as TOML (only values that differ from the defaults are kept)."""
        path = path or config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        defaults = Config()
        lines = ["# dualrec settings (see `dualrec-tui --help`)"]
        for name, value in asdict(self).items():
            if value is None or value == getattr(defaults, name):
                continue
            lines.append(f"{name} = {_toml_value(value)}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def remember_theme(path: Path, theme: str) -> None:
    """Keep a theme picked in the palette for the next start; a read-only or broken config file must not
    stop the app from quitting, so failures are ignored (the theme is then simply not kept)."""
    import contextlib

    from .core.errors import DualrecError

    with contextlib.suppress(DualrecError, OSError):
        replace(Config.load(path, apply_env=False), theme=theme).save(path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as exc:
            raise DataFormatError(path, None, "reading TOML on Python 3.10 needs `pip install tomli`") from exc
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, None, f"cannot read settings: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise DataFormatError(path, line, f"not valid TOML: {exc}") from exc


def _coerce(path: Path, name: str, value: Any, default: Any) -> Any:
    """Turn a TOML value into the field's type, or say which setting is wrong."""
    if name in ("db_path", "models_dir"):
        if not isinstance(value, str) or not value:
            raise DataFormatError(path, None, f"{name} must be a path string")
        return Path(value).expanduser()
    expected = type(default)
    if expected is bool and not isinstance(value, bool):
        raise DataFormatError(path, None, f"{name} must be true or false, got {value!r}")
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise DataFormatError(path, None, f"{name} must be a whole number, got {value!r}")
    if expected is str and not isinstance(value, str):
        raise DataFormatError(path, None, f"{name} must be a string, got {value!r}")
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
