"""SIGINT and SIGTERM stop the whole CLI, not just the experiment being analysed.

Between Dagster runs the handler raises `Stopped` at once. During a run Dagster swaps in its own
handler for both signals: it turns the signal into an interrupt of the running step (the step fails,
the run ends FAILURE) and then forgets it, and may drop a signal that arrived outside a step. The
wakeup fd records every signal whatever handler is installed, so `raise_if_stopped()` after each
run turns it back into `Stopped`, and `stop_requested()` tells the console to stop echoing the
errors the interrupted run raises (DuckDB reports an interrupted query as its own error).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """The CLI was asked to stop; a KeyboardInterrupt so code that lets Ctrl-C through lets it through."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM

    def describe(self) -> str:
        """What was left as it was (subclasses that know more say more)."""
        return f"interrupted by {self.signal_name}"


_wakeup_read_fd: int | None = None
_received: list[int] = []  # stop signals read from the wakeup fd, oldest first


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Install the handlers and the wakeup fd for the duration of a command (main thread only)."""
    global _wakeup_read_fd
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    previous = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
    previous_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    _wakeup_read_fd = read_fd
    _received.clear()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        for s, handler in previous.items():
            signal.signal(s, handler)
        _wakeup_read_fd = None
        os.close(read_fd)
        os.close(write_fd)


def stop_requested() -> int | None:
    """The first SIGINT or SIGTERM received so far, if any (always None outside `stop_on_signals`)."""
    if _wakeup_read_fd is not None:
        try:
            received = os.read(_wakeup_read_fd, 512)
        except BlockingIOError:
            received = b""
        _received.extend(signum for signum in received if signum in STOP_SIGNALS)
    return _received[0] if _received else None


def raise_if_stopped() -> None:
    """Raise `Stopped` if SIGINT or SIGTERM has arrived."""
    signum = stop_requested()
    if signum is not None:
        raise Stopped(signum)
