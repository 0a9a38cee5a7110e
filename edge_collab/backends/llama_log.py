"""Route llama.cpp's log lines to Python logging and keep the latest errors.

llama.cpp has one process-wide log callback, so this module installs one
process-wide handler. Loading errors are only reported through the log; the
last few are kept so a failed load can say why in one line.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import deque

import llama_cpp

logger = logging.getLogger("edge_collab.llama_cpp")

# ggml_log_level: NONE=0, DEBUG=1, INFO=2, WARN=3, ERROR=4, CONT=5 (continues the previous line)
_LEVELS = {0: logging.CRITICAL, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_CONTINUE = 5


class _LogCapture:
    def __init__(self) -> None:
        self.recent_errors: deque[str] = deque(maxlen=8)
        self._lock = threading.Lock()
        self._last_level = logging.DEBUG
        self._callback = llama_cpp.llama_log_callback(self._on_log)  # kept alive: C holds it

    def _on_log(self, level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", errors="replace").rstrip()
        py_level = self._last_level if level == _CONTINUE else _LEVELS.get(level, logging.DEBUG)
        self._last_level = py_level
        if py_level >= logging.ERROR and line:
            with self._lock:
                self.recent_errors.append(line)
        if line and logger.isEnabledFor(py_level):
            logger.log(py_level, "%s", line)

    def install(self) -> None:
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))

    def take_errors(self) -> list[str]:
        with self._lock:
            errors = list(self.recent_errors)
            self.recent_errors.clear()
        return errors


_capture = _LogCapture()
_capture.install()


def take_recent_errors() -> list[str]:
    """llama.cpp error lines logged since the last call."""
    return _capture.take_errors()


def clear_recent_errors() -> None:
    _capture.take_errors()
