"""`dualrec-tui` exits non-zero after a fatal error, logs to a file under the log folder, F4 shows that file."""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path

import pytest

import dualrec_tui.app as app_module
from dualrec_tui import __main__ as cli
from dualrec_tui import logs


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Own config, db and log folder; the root logger is restored afterwards."""
    monkeypatch.setenv("DUALREC_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("DUALREC_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("DUALREC_DB", str(tmp_path / "watch.db"))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield tmp_path
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def headless(app_class: type) -> type:
    class Headless(app_class):  # type: ignore[misc, valid-type]
        CSS_PATH = Path(app_module.__file__).with_name("app.tcss")  # relative paths resolve beside the subclass

        def run(self, **kwargs):  # the real entry point, without a terminal
            return super().run(headless=True, **kwargs)

    return Headless


def test_fatal_error_exits_non_zero_and_is_logged(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken(app_module.DualrecApp):
        async def on_mount(self) -> None:
            raise RuntimeError("boom while mounting")

    monkeypatch.setattr(app_module, "DualrecApp", headless(Broken))
    assert cli.main(["--no-llm"]) == 1
    log = (isolated / "logs" / "dualrec.log").read_text(encoding="utf-8")
    assert "stopped after a fatal error (exit status 1)" in log
    assert "RuntimeError: boom while mounting" in log  # the traceback, not only the status
    assert "exit status 1" in capsys.readouterr().err


def test_clean_exit_is_zero_and_warnings_reach_the_log(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Quits(app_module.DualrecApp):
        async def on_mount(self) -> None:  # Textual runs DualrecApp.on_mount too (handlers of every base class)
            warnings.warn("a library complained", UserWarning, stacklevel=1)
            logging.getLogger("dualrec.test").warning("seen by Textual's handler too")
            self.set_timer(0.3, self.exit)

    monkeypatch.setattr(app_module, "DualrecApp", headless(Quits))
    assert cli.main(["--no-llm"]) == 0
    log = (isolated / "logs" / "dualrec.log").read_text(encoding="utf-8")
    assert "starting" in log and "a library complained" in log and "exited normally" in log
    assert not any(type(h).__name__ == "TextualHandler" for h in logging.getLogger().handlers)  # removed after


def test_unwritable_log_folder_is_not_fatal(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = isolated / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    monkeypatch.setenv("DUALREC_LOG_DIR", str(blocker / "logs"))
    assert logs.setup_file_logging() is None and logs.current_log_file() is None


def test_f4_shows_the_log_file(isolated: Path) -> None:
    from dualrec_tui.config import Config
    from tests.tui_support import make_hub

    path = logs.setup_file_logging()
    assert path == isolated / "logs" / "dualrec.log"

    async def run() -> str:
        app = app_module.DualrecApp(Config(db_path=isolated / "watch.db"), hub=make_hub(isolated / "models"))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("f4")
            await pilot.pause()
            return str(app.screen.query_one("#log-file").render())

    assert str(path) in asyncio.run(run())
