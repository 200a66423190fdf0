"""A committed entry is never lost: writers are SIGKILLed at random moments, then the log is checked.

Each writer prints an id only after the commit returned; every printed id must be in the database,
the database must pass `PRAGMA integrity_check`, and multi-row transactions must be all or nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dualrec_tui.store import WatchLog

ROOT = Path(__file__).resolve().parents[1]
BATCH = 25

WRITER = """
import sys
from dualrec_tui.store import WatchLog

log = WatchLog.open(sys.argv[1])
mode, tag = sys.argv[2], sys.argv[3]
print("ready", flush=True)
i = 0
while True:
    if mode == "single":
        entry = log.add(f"{tag} film {i}", year=2000, watched_on="2024-01-01", rating=3.5, note="n" * 200)
        sys.stdout.write(f"{entry.id}\\n")
    else:  # one transaction of BATCH entries, all tagged with the batch name
        with log.transaction():
            for j in range(BATCH_SIZE):
                log.add(f"{tag}-{i} part {j}", watched_on="2024-01-02", note=f"{tag}-{i}")
        sys.stdout.write(f"{tag}-{i}\\n")
    sys.stdout.flush()
    i += 1
""".replace("BATCH_SIZE", str(BATCH))

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def _run_and_kill(path: Path, mode: str, tag: str, delay: float) -> list[str]:
    """Start a writer, SIGKILL it `delay` seconds after it is ready; return the complete lines it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), mode, tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready == b"ready\n", proc.stderr.read().decode() if proc.stderr else ready
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the writer stopped before it was killed"
    text = out.decode()
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return complete.split()


def _check(path: Path) -> WatchLog:
    log = WatchLog.open(path)
    assert log.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    return log


def test_single_entry_commits_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    rng = random.Random(20250601)
    reported: list[int] = []
    for round_number in range(4):
        lines = _run_and_kill(path, "single", f"r{round_number}", rng.uniform(0.05, 0.4))
        reported.extend(int(line) for line in lines)
        with _check(path) as log:
            present = {entry.id for entry in log.history()}
            missing = set(reported) - present
            assert not missing, f"committed ids lost after round {round_number}: {sorted(missing)[:10]}"
    assert len(reported) > 4, "the writer should have committed something before being killed"


def test_multi_row_transactions_are_all_or_nothing_under_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    rng = random.Random(7)
    reported: set[str] = set()
    for round_number in range(3):
        reported.update(_run_and_kill(path, "batch", f"b{round_number}", rng.uniform(0.05, 0.4)))
        with _check(path) as log:
            sizes: dict[str, int] = {}
            for entry in log.chronological():
                sizes[entry.note or ""] = sizes.get(entry.note or "", 0) + 1
            assert set(sizes.values()) <= {BATCH}, "a batch was partly written"
            assert reported <= set(sizes), f"committed batches lost: {sorted(reported - set(sizes))}"
    assert reported, "the writer should have committed a batch before being killed"
