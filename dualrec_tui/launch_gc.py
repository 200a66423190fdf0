"""The cyclic garbage collector during a launch: off until the first answer, then frozen and back on.

A launch builds ~65k tracked objects that live as long as the app (Textual's styles and widgets, the
catalog's index) and drops almost nothing in cycles, yet the collector ran ~160 passes over them
before the first query was answered: ~75 ms of the ~1 s to a usable search box at 87k movies, on the
threads that share one GIL (bench: `benchmarks/bench_app.py --typed`). `gc.freeze()` afterwards keeps
those objects out of later passes too, so a full pass never stalls a keystroke on them. What it costs:
the few thousand objects the launch leaves in cycles (~1 MB) are never freed.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Called first thing by the entry point, before Textual is imported."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Called once the first query is answered (or there was none to answer); a no-op unless `pause` ran."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
