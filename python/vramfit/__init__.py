"""vramfit: run GGUF language models inside an exact VRAM budget, from Python.

A pure-Python binding of vramfit's C ABI (libvramfit.so, found through $VRAMFIT_LIBRARY, next to
this package, or on the system library path), shaped like llama-cpp-python:

    import vramfit
    with vramfit.Llama("model.gguf", n_ctx=2048, vram_budget="11.5GiB") as llm:
        print(llm("Once upon a time", max_tokens=32)["choices"][0]["text"])
        print(llm.create_chat_completion([{"role": "user", "content": "Hi!"}])["choices"][0]["message"])
        print(llm.memory())
    vramfit.plan("big.gguf", vram_budget="12GiB", n_ctx=4096)["device_total_bytes"]

Errors raise vramfit.Error subclasses with the library's message; its log messages go to the
"vramfit" logger and print only if logging is configured.
"""
from __future__ import annotations

from .errors import (BudgetExceededError, BufferTooSmallError, CancelledError, ContextFullError, DeviceError, Error,
                     FormatError, InternalError, InvalidArgumentError, IoError, LibraryNotFoundError,
                     OutOfMemoryError, UnsupportedError)
from .llama import Llama
from .native import Context, Model, OffloadOptions, Sampler, plan

__version__ = "0.1.0"


def parse_size(size) -> int:
    """Bytes of a size as --vram-budget takes it ("11.5GiB", "12GB", "800MiB", an int), parsed by the
    library (InvalidArgumentError for anything else)."""
    from ._native import parse_size as parse
    return parse(size)


def library_version() -> str:
    """The loaded libvramfit's release, "MAJOR.MINOR.PATCH"."""
    from ._native import lib
    return lib().vramfit_version().decode()


def library_path() -> str:
    """The path of the loaded libvramfit.so."""
    from ._native import lib
    return lib()._name


__all__ = ["Llama", "plan", "parse_size", "library_version", "library_path", "Model", "Context", "Sampler",
           "OffloadOptions", "Error", "InvalidArgumentError", "IoError", "FormatError", "UnsupportedError",
           "OutOfMemoryError", "BudgetExceededError", "ContextFullError", "DeviceError", "InternalError",
           "BufferTooSmallError", "CancelledError", "LibraryNotFoundError"]
