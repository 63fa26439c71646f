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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["stop_with_parent", "terminate_as_interrupt"]


def _interrupt(signum, frame):
    """A signal handler: raise ``KeyboardInterrupt`` naming the signal, so that the traceback says which."""
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` like Ctrl-C, so that
    ``finally`` clauses run (their default action kills the process without unwinding).
    Handlers set by someone else are left alone; off the main thread this does nothing (only
    the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: What :func:`stop_with_parent` raises ``KeyboardInterrupt`` through. Not SIGINT: a process
#: started in the background by a shell without job control (``nohup cmd &``) ignores SIGINT,
#: and ``_thread.interrupt_main`` does nothing for an ignored signal.
STOP_SIGNAL = getattr(signal, "SIGUSR1", signal.SIGINT)


def stop_with_parent(stop: Any, *, only_while: threading.Event | None = None, poll_s: float = 1.0) -> threading.Thread:
    """In a worker process, called from its main thread: raise ``KeyboardInterrupt`` in that
    thread once ``stop.value`` (a ``multiprocessing.RawValue`` the parent sets to 1 when it is
    interrupted) is true or the parent process is gone (the worker was re-parented), polling
    every ``poll_s`` seconds.

    A plain shared byte, not a ``multiprocessing.Event``: a worker that exits while waiting on
    an Event leaves it counting a sleeper, and the parent's ``set()`` then blocks for ever.

    With ``only_while``, only while that event is set (the worker is busy with a task): an idle
    worker is left to its pool, which ends it without a traceback. Installs a handler for
    :data:`STOP_SIGNAL`. A daemon thread; returns it."""
    signal.signal(STOP_SIGNAL, _interrupt)
    parent = os.getppid()

    def watch() -> None:
        while not stop.value and os.getppid() == parent:
            time.sleep(poll_s)
        if only_while is None or only_while.is_set():
            _thread.interrupt_main(STOP_SIGNAL)

    thread = threading.Thread(target=watch, name="stop-with-parent", daemon=True)
    thread.start()
    return thread
