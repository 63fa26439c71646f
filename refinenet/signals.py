"""Stopping cleanly: SIGTERM and SIGHUP handled as Ctrl-C, and workers that stop with their parent.

``kill PID``, ``timeout`` and a closed terminal send SIGTERM or SIGHUP to one process, whose
default action ends it at once: no ``finally`` runs, and the worker processes it started go on
alone (a study's workers would train for up to an hour, holding their runs' locks).
:func:`terminate_as_interrupt` turns those signals into ``KeyboardInterrupt`` within a block,
and :func:`stop_with_parent` interrupts a worker process when its parent stops or dies.
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["stop_with_parent", "terminate_as_interrupt"]


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` like Ctrl-C, so that
    ``finally`` clauses run (their default action kills the process without unwinding).
    Handlers set by someone else are left alone; off the main thread this does nothing (only
    the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_with_parent(stop: Any, *, only_while: threading.Event | None = None, poll_s: float = 1.0) -> threading.Thread:
    """In a worker process: raise ``KeyboardInterrupt`` in its main thread once ``stop`` (a
    ``multiprocessing`` Event the parent sets when it is interrupted) is set or the parent
    process is gone (the worker was re-parented), polling every ``poll_s`` seconds.

    With ``only_while``, only while that event is set (the worker is busy with a task): an idle
    worker is left to its pool, which ends it without a traceback. A daemon thread; returns it."""
    parent = os.getppid()

    def watch() -> None:
        while not stop.wait(poll_s):
            if os.getppid() != parent:
                break
        if only_while is None or only_while.is_set():
            _thread.interrupt_main()

    thread = threading.Thread(target=watch, name="stop-with-parent", daemon=True)
    thread.start()
    return thread
