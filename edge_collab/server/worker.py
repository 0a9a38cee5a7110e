"""The one thread the models run on, and the gate in front of it.

One generation runs at a time per model pair (the models hold one KV cache
each); others wait in a bounded queue, and beyond it get 429. Generation runs
on one long-lived worker thread: llama.cpp's CPU backend keeps an OpenMP
thread team per calling thread, and handing the models to a new thread per
request (measured) made the server ~15% slower than the Python API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class Busy(Exception):
    """The queue is full."""


class Gate:
    """One generation at a time, at most `queue_size` waiting."""

    STUCK_AFTER_S = 10.0  # held this long with the models idle: a turn was never released

    def __init__(self, queue_size: int):
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._queue_size = queue_size
        self._held_since: float | None = None

    async def acquire(self) -> None:
        if self._lock.locked() and self._waiting >= self._queue_size:
            raise Busy
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        self._held_since = time.monotonic()

    def release(self) -> None:
        self._held_since = None
        self._lock.release()

    @property
    def held(self) -> bool:
        return self._lock.locked()

    @property
    def waiting(self) -> int:
        return self._waiting

    def stuck_for(self, models: ModelsThread) -> float | None:
        """Seconds the gate has been held while the models' thread did nothing,
        when that is past STUCK_AFTER_S (a path out of a generation that did not
        release it); None when generation can go on."""
        if self._held_since is None:
            return None
        idle_since = max(self._held_since, models.idle_since or self._held_since)
        if models.busy:
            return None
        idle = time.monotonic() - idle_since
        return idle if idle > self.STUCK_AFTER_S else None


class Turn:
    """One request's hold on the gate; releasing it twice is harmless."""

    def __init__(self, gate: Gate):
        self._gate = gate
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._gate.release()


class ModelsThread:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-collab-models")
        self._running = 0
        self._count_lock = threading.Lock()
        self.idle_since: float | None = None  # when the last piece of work ended

    @property
    def busy(self) -> bool:
        return self._running > 0

    def _tracked(self, work: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            with self._count_lock:
                self._running += 1
            try:
                return work(*args)
            finally:
                with self._count_lock:
                    self._running -= 1
                    self.idle_since = time.monotonic()

        return run

    async def call(self, work: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._tracked(work), *args)

    def submit(self, work: Callable[[], None]) -> None:
        self._executor.submit(self._tracked(work))

    def shutdown(self) -> None:
        # Let a generation that is ending finish before the caller frees the models.
        self._executor.shutdown(wait=True, cancel_futures=True)
