"""The library's log callback, bridged to Python's logging (logger "vramfit").

Nothing is printed unless the application configured logging: a message is handed on only when the
"vramfit" logger (or an ancestor) has a handler and is enabled for its level, so Python's
last-resort handler never writes the library's messages to stderr on its own.
"""
from __future__ import annotations

import atexit
import ctypes
import logging

from . import _native

logger = logging.getLogger("vramfit")

# vramfit_log_level -> logging level
_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}


def _deliver(level: int, message: bytes, _user_data) -> None:
    try:
        py_level = _LEVELS.get(level, logging.ERROR)
        if logger.isEnabledFor(py_level) and logger.hasHandlers():
            logger.log(py_level, "%s", message.decode("utf-8", errors="replace"))
    except Exception:  # an exception must not unwind into C; logging's own errors are not ours to raise
        pass


# Kept alive for the life of the process: the library holds the pointer.
_callback = _native.LOG_CALLBACK(_deliver)


def install(lib: ctypes.CDLL) -> None:
    lib.vramfit_set_log_callback(_callback, None)
    # Detach before the interpreter tears down: a late message must not call into a dying Python.
    atexit.register(lib.vramfit_set_log_callback, _native.LOG_CALLBACK(), None)
