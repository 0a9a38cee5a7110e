"""A call made in this thread, handed over as a done Future: the in-turn path
of the links' `start_probe` and `start_audit`, so callers treat a mentor with
or without a thread of its own alike."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


def run_now(function: Callable[..., Any], *args: Any) -> Future[Any]:
    """`function(*args)` here and now; its result or its error in a done Future."""
    done: Future[Any] = Future()
    try:
        done.set_result(function(*args))
    except Exception as error:  # noqa: BLE001 - handed to whoever takes the result
        done.set_exception(error)
    return done
