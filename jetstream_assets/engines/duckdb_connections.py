"""One process's connections to the DuckDB file, sharing its lock with other processes.

DuckDB lets one process at a time open a file (an OS file lock), and opening it costs tens of ms (the
catalog is loaded). Outside a session every operation opens and closes the file. Inside a session (one
step) the file stays open between operations, but only while nobody else wants it: a process waiting
for the lock leaves a marker file `<database>.waiting.<pid>`, and the holder, at its next operation,
closes the file and lets the waiter in. So the lock is held across operations only when uncontended,
and per operation (a statement or a short transaction) when another run waits.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Iterator

import duckdb

from jetstream_assets.engines.processes import process_alive
from jetstream_assets.engines.warehouse import WarehouseError

HANDOFF_SECONDS = 10.0  # how long a holder that stepped aside waits for a waiter to take the lock


class SharedFileConnections:
    def __init__(self, path: str, config: dict[str, object], lock_wait_seconds: float):
        self.path = path
        self.lock_wait_seconds = lock_wait_seconds
        self._config = config
        self._marker_prefix = os.path.basename(path) + ".waiting."
        self._mutex = threading.RLock()
        self._open: duckdb.DuckDBPyConnection | None = None
        self._sessions = 0
        self._in_use = 0

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        with self._mutex:
            self._sessions += 1
        try:
            yield
        finally:
            with self._mutex:
                self._sessions -= 1
                self._close_if_unused()

    @contextlib.contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._mutex:
            if self._open is not None and self._in_use == 0 and self._waiters():
                self._close()
                self._hand_off()
            if self._open is None:
                self._open = self._connect()
            self._in_use += 1
            cursor = self._open.cursor()  # its own transaction context; safe if another thread works too
        try:
            yield cursor
        finally:
            cursor.close()
            with self._mutex:
                self._in_use -= 1
                self._close_if_unused()

    def _close_if_unused(self) -> None:
        if self._in_use == 0 and self._sessions == 0:
            self._close()

    def _close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def _waiters(self) -> list[int]:
        """Pids of other live processes waiting for the file (markers of dead ones are removed)."""
        folder = os.path.dirname(self.path)
        waiting = []
        for name in os.listdir(folder):
            pid = name[len(self._marker_prefix):] if name.startswith(self._marker_prefix) else ""
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            if process_alive(int(pid)):
                waiting.append(int(pid))
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, name))
        return waiting

    def _hand_off(self) -> None:
        """Wait until the waiters got the file (they remove their marker once connected)."""
        deadline = time.monotonic() + HANDOFF_SECONDS
        while self._waiters() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_wait_seconds
        marker = os.path.join(os.path.dirname(self.path), f"{self._marker_prefix}{os.getpid()}")
        delay = 0.01
        try:
            while True:
                try:
                    return duckdb.connect(self.path, config=self._config)
                except duckdb.IOException as e:
                    if "lock" not in str(e).lower():
                        raise WarehouseError(f"cannot open DuckDB warehouse {self.path}: {e}") from e
                    if time.monotonic() > deadline:
                        raise WarehouseError(
                            f"cannot open DuckDB warehouse {self.path}: another process held its lock for more "
                            f"than {self.lock_wait_seconds:g} s (JETSTREAM_DUCKDB_LOCK_WAIT_SECONDS): {e}"
                        ) from e
                    # ask the holder to step aside at its next operation, instead of waiting for its whole step
                    with open(marker, "a"):
                        pass
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)
