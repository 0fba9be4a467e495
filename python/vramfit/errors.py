"""vramfit.Error and its subclasses: one per vramfit_status, carrying the code and the library's message."""
from __future__ import annotations

from typing import Callable, Dict, Type


class Error(Exception):
    """A failed vramfit call. ``code`` is the C status (vramfit_status), ``status`` its stable name
    ("io", "budget_exceeded", ...), ``message`` the library's message, which names the problem and
    where (file offset, tensor, parameter)."""

    code: int = -1
    status: str = "unknown"

    def __init__(self, message: str, code: int = -1):
        super().__init__(message)
        self.message = message
        if code >= 0:
            self.code = code


class InvalidArgumentError(Error, ValueError):
    """A value out of range, a bad size string, a token outside the vocabulary (VRAMFIT_ERR_INVALID_ARGUMENT)."""
    code, status = 1, "invalid_argument"


class IoError(Error, OSError):
    """The OS refused: the file is missing or unreadable (VRAMFIT_ERR_IO)."""
    code, status = 2, "io"


class FormatError(Error, ValueError):
    """Not a valid GGUF file: truncated, corrupt, a missing tensor (VRAMFIT_ERR_FORMAT)."""
    code, status = 3, "format"


class UnsupportedError(Error):
    """Valid, but vramfit does not implement it: GGUF v1, an architecture (VRAMFIT_ERR_UNSUPPORTED)."""
    code, status = 4, "unsupported"


class OutOfMemoryError(Error, MemoryError):
    """A host or device allocation failed (VRAMFIT_ERR_OUT_OF_MEMORY)."""
    code, status = 5, "out_of_memory"


class BudgetExceededError(Error):
    """The VRAM budget cannot hold what is asked; the message names the smallest budget that works
    (VRAMFIT_ERR_BUDGET_EXCEEDED)."""
    code, status = 6, "budget_exceeded"


class ContextFullError(Error):
    """The KV cache has no room for the tokens (VRAMFIT_ERR_CONTEXT_FULL); nothing was changed."""
    code, status = 7, "context_full"


class DeviceError(Error):
    """A CUDA / device runtime error (VRAMFIT_ERR_DEVICE)."""
    code, status = 8, "device"


class InternalError(Error):
    """A bug in vramfit: please report it with the message (VRAMFIT_ERR_INTERNAL)."""
    code, status = 9, "internal"


class BufferTooSmallError(Error):
    """An output buffer was too small (VRAMFIT_ERR_BUFFER_TOO_SMALL); the binding retries, so this
    reaching you is a binding bug."""
    code, status = 10, "buffer_too_small"


class CancelledError(Error):
    """A callback asked to stop: the load progress callback returned False (VRAMFIT_ERR_CANCELLED)."""
    code, status = 11, "cancelled"


class LibraryNotFoundError(Error, OSError):
    """libvramfit.so could not be loaded (not a library status: raised by the binding)."""
    status = "library_not_found"


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (InvalidArgumentError, IoError, FormatError, UnsupportedError, OutOfMemoryError, BudgetExceededError,
                ContextFullError, DeviceError, InternalError, BufferTooSmallError, CancelledError)
}


def error_for(code: int, message: str) -> Error:
    """The exception for a vramfit_status (an unknown code: Error with that code)."""
    return _BY_CODE.get(code, Error)(message, code)


def check(code: int, message: Callable[[], str]) -> None:
    """Raises the exception of a failed status; message() is read only then (it is per thread)."""
    if code != 0:
        raise error_for(code, message())
