"""The one thread the models run on, and the gate in front of it.

One generation runs at a time per model pair (the models hold one KV cache
each); others wait in a bounded queue, and beyond it get 429. Generation runs
on one long-lived worker thread: llama.cpp's CPU backend keeps an OpenMP
thread team per calling thread, and handing the models to a new thread per
request (measured) made the server ~15% slower than the Python API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class Busy(Exception):
    """The queue is full."""


class Gate:
    """One generation at a time, at most `queue_size` waiting."""

    def __init__(self, queue_size: int):
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._queue_size = queue_size

    async def acquire(self) -> None:
        if self._lock.locked() and self._waiting >= self._queue_size:
            raise Busy
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1

    def release(self) -> None:
        self._lock.release()


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

    async def call(self, work: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    def submit(self, work: Callable[[], None]) -> None:
        self._executor.submit(work)

    def shutdown(self) -> None:
        # Let a generation that is ending finish before the caller frees the models.
        self._executor.shutdown(wait=True, cancel_futures=True)
