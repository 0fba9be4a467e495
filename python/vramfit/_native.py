"""ctypes declarations of capi/vramfit.h, and where libvramfit.so is found.

Every struct mirrors the header field for field (same order, same C types), so ctypes lays it out as
the C compiler does. Parameter structs are filled by the library's ``vramfit_*_params_init`` with
our ``sizeof``, as the header asks bindings to do: an older or newer library then reads only the
bytes both sides know.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path
from typing import Callable, Optional

from .errors import LibraryNotFoundError, check

c_token = ctypes.c_int32
c_status = ctypes.c_int

ABI_VERSION = 1  # the SONAME suffix this binding was written for

# Status codes (vramfit_status).
OK = 0
ERR_BUFFER_TOO_SMALL = 10


class OffloadRule(ctypes.Structure):
    _fields_ = [("pattern", ctypes.c_char_p), ("to_device", ctypes.c_bool)]


class OffloadPolicy(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("strategy", ctypes.c_int32),
        ("vram_budget_bytes", ctypes.c_uint64),
        ("reserve_bytes", ctypes.c_uint64),
        ("n_gpu_layers", ctypes.c_int32),
        ("kv_placement", ctypes.c_int32),
        ("rules", ctypes.POINTER(OffloadRule)),
        ("n_rules", ctypes.c_size_t),
        ("min_ctx", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("cpu_moe", ctypes.c_bool),
        ("reserved2", ctypes.c_uint8 * 3),
        ("n_cpu_moe", ctypes.c_int32),
    ]


PROGRESS_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_float, ctypes.c_void_p)
LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class ModelParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("device", ctypes.c_char_p),
        ("offload", ctypes.POINTER(OffloadPolicy)),
        ("progress", PROGRESS_CALLBACK),
        ("progress_user_data", ctypes.c_void_p),
        ("n_ctx", ctypes.c_uint32),
        ("n_batch", ctypes.c_uint32),
        ("kv_type", ctypes.c_int32),
        ("reserved2", ctypes.c_uint32),
    ]


class ContextParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("n_ctx", ctypes.c_uint32),
        ("n_batch", ctypes.c_uint32),
        ("n_threads", ctypes.c_int32),
        ("kv_type", ctypes.c_int32),
    ]


class SamplerParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("temperature", ctypes.c_float),
        ("top_k", ctypes.c_int32),
        ("top_p", ctypes.c_float),
        ("min_p", ctypes.c_float),
        ("typical_p", ctypes.c_float),
        ("repeat_penalty", ctypes.c_float),
        ("frequency_penalty", ctypes.c_float),
        ("presence_penalty", ctypes.c_float),
        ("penalty_last_n", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
    ]


class ChatMessage(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


class ChatParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("add_generation_prompt", ctypes.c_int32),
        ("chat_template", ctypes.c_char_p),
        ("bos_token", ctypes.c_char_p),
        ("eos_token", ctypes.c_char_p),
        ("extra_json", ctypes.c_char_p),
        ("date", ctypes.c_char_p),
    ]


_p = ctypes.c_void_p  # opaque handles: vramfit_model*, vramfit_context*, ...
_size_p = ctypes.POINTER(ctypes.c_size_t)
_token_p = ctypes.POINTER(c_token)

# name: (restype, argtypes), in the header's order.
_SIGNATURES = {
    "vramfit_version": (ctypes.c_char_p, []),
    "vramfit_abi_version": (ctypes.c_int32, []),
    "vramfit_last_error": (ctypes.c_char_p, []),
    "vramfit_status_string": (ctypes.c_char_p, [c_status]),
    "vramfit_set_log_callback": (None, [LOG_CALLBACK, ctypes.c_void_p]),
    "vramfit_model_params_init": (c_status, [ctypes.POINTER(ModelParams), ctypes.c_uint32]),
    "vramfit_context_params_init": (c_status, [ctypes.POINTER(ContextParams), ctypes.c_uint32]),
    "vramfit_offload_policy_init": (c_status, [ctypes.POINTER(OffloadPolicy), ctypes.c_uint32]),
    "vramfit_sampler_params_init": (c_status, [ctypes.POINTER(SamplerParams), ctypes.c_uint32]),
    "vramfit_model_load": (c_status, [ctypes.c_char_p, ctypes.POINTER(ModelParams), ctypes.POINTER(_p)]),
    "vramfit_model_free": (None, [_p]),
    "vramfit_model_n_vocab": (ctypes.c_int32, [_p]),
    "vramfit_model_n_ctx_train": (ctypes.c_int32, [_p]),
    "vramfit_model_bos": (c_token, [_p]),
    "vramfit_model_eos": (c_token, [_p]),
    "vramfit_model_is_eog": (ctypes.c_bool, [_p, c_token]),
    "vramfit_tokenize": (c_status, [_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool, _token_p,
                                    ctypes.c_size_t, _size_p]),
    "vramfit_detokenize": (c_status, [_p, _token_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, _size_p]),
    "vramfit_token_to_piece": (c_status, [_p, c_token, ctypes.c_char_p, ctypes.c_size_t, _size_p]),
    "vramfit_context_create": (c_status, [_p, ctypes.POINTER(ContextParams), ctypes.POINTER(_p)]),
    "vramfit_context_free": (None, [_p]),
    "vramfit_decode": (c_status, [_p, _token_p, ctypes.c_size_t, ctypes.c_bool]),
    "vramfit_get_logits": (ctypes.POINTER(ctypes.c_float), [_p, ctypes.c_int32]),
    "vramfit_context_n_past": (ctypes.c_int32, [_p]),
    "vramfit_context_n_ctx": (ctypes.c_int32, [_p]),
    "vramfit_context_clear": (None, [_p]),
    "vramfit_sampler_create": (c_status, [ctypes.POINTER(SamplerParams), ctypes.POINTER(_p)]),
    "vramfit_sampler_free": (None, [_p]),
    "vramfit_sampler_sample": (c_status, [_p, _p, ctypes.c_int32, _token_p]),
    "vramfit_sampler_accept": (None, [_p, c_token]),
    "vramfit_sampler_reset": (None, [_p]),
    "vramfit_plan_create": (c_status, [ctypes.c_char_p, ctypes.POINTER(ModelParams), ctypes.POINTER(ContextParams),
                                       ctypes.POINTER(_p)]),
    "vramfit_plan_json": (ctypes.c_char_p, [_p]),
    "vramfit_plan_table": (ctypes.c_char_p, [_p]),
    "vramfit_plan_free": (None, [_p]),
    "vramfit_chat_params_init": (c_status, [ctypes.POINTER(ChatParams), ctypes.c_uint32]),
    "vramfit_chat_apply": (c_status, [_p, ctypes.POINTER(ChatParams), ctypes.POINTER(ChatMessage), ctypes.c_size_t,
                                      ctypes.c_char_p, ctypes.c_size_t, _size_p]),
    "vramfit_model_has_chat_template": (ctypes.c_bool, [_p]),
    "vramfit_tokenize_special": (c_status, [_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool, ctypes.c_bool,
                                            _token_p, ctypes.c_size_t, _size_p]),
    "vramfit_parse_size": (c_status, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64)]),
    "vramfit_context_memory_json": (c_status, [_p, ctypes.c_char_p, ctypes.c_size_t, _size_p]),
}


def _candidates() -> list:
    """Where to look, in order: $VRAMFIT_LIBRARY, next to this package, the system's search path."""
    env = os.environ.get("VRAMFIT_LIBRARY")
    if env:
        return [env]  # an explicit choice: never fall back to another library silently
    here = Path(__file__).resolve().parent
    found = [str(p) for p in sorted(here.glob("libvramfit.so*"))]
    system = ctypes.util.find_library("vramfit")
    if system:
        found.append(system)
    found.append(f"libvramfit.so.{ABI_VERSION}")  # dlopen's own search: LD_LIBRARY_PATH, ld.so.cache
    return found


def _open() -> ctypes.CDLL:
    tried = []
    for candidate in _candidates():
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as e:
            tried.append(f"{candidate} ({e})")
            continue
        try:
            for name, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
        except AttributeError as e:
            raise LibraryNotFoundError(
                f"{candidate} is an older libvramfit without {e.name if hasattr(e, 'name') else e}: "
                "build or install the vramfit this package came with") from None
        abi = lib.vramfit_abi_version()
        if abi != ABI_VERSION:
            raise LibraryNotFoundError(f"{candidate} has ABI version {abi}; this package needs {ABI_VERSION}")
        return lib
    raise LibraryNotFoundError(
        "libvramfit.so not found; set VRAMFIT_LIBRARY to its path (e.g. build/lib/libvramfit.so), put it next "
        "to the vramfit package, or install it (cmake --install build). Tried: " + "; ".join(tried))


_lock = threading.Lock()
_library: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use, so ``import vramfit`` works without it)."""
    global _library
    if _library is None:
        with _lock:
            if _library is None:
                loaded = _open()
                from . import _log  # the log bridge needs the library; installed once, here
                _log.install(loaded)
                _library = loaded
    return _library


def last_error() -> str:
    return lib().vramfit_last_error().decode("utf-8", errors="replace")


def call(fn: Callable[..., int], *args) -> None:
    """Calls a status-returning function; raises the matching vramfit.Error on failure."""
    check(fn(*args), last_error)


def call_text(fn: Callable[..., int], *args, capacity: int = 256) -> bytes:
    """Calls a function that writes a NUL-terminated text to (buf, capacity, n_out), growing buf."""
    n = ctypes.c_size_t(0)
    while True:
        buf = ctypes.create_string_buffer(capacity)
        status = fn(*args, buf, capacity, ctypes.byref(n))
        if status == ERR_BUFFER_TOO_SMALL and n.value + 1 > capacity:
            capacity = n.value + 1
            continue
        check(status, last_error)
        return buf.raw[: n.value]


def call_tokens(fn: Callable[..., int], *args, capacity: int = 64) -> list:
    """Calls a function that writes tokens to (out, capacity, n_out), growing out."""
    n = ctypes.c_size_t(0)
    while True:
        out = (c_token * capacity)()
        status = fn(*args, out, capacity, ctypes.byref(n))
        if status == ERR_BUFFER_TOO_SMALL and n.value > capacity:
            capacity = n.value
            continue
        check(status, last_error)
        return out[: n.value]


def init_params(init: Callable[..., int], struct_type):
    """A parameter struct holding the library's defaults, its struct_size set to our size."""
    params = struct_type()
    call(init, ctypes.byref(params), ctypes.sizeof(struct_type))
    return params


def parse_size(size) -> int:
    """Bytes from an int or a size string ("11.5GiB", "800MB"), parsed by the library."""
    if isinstance(size, bool):
        raise TypeError("a size is an int (bytes) or a string such as '11.5GiB', not a bool")
    if isinstance(size, int):
        if size < 0:
            raise ValueError(f"a size cannot be negative: {size}")
        return size
    if not isinstance(size, str):
        raise TypeError(f"a size is an int (bytes) or a string such as '11.5GiB', not {type(size).__name__}")
    out = ctypes.c_uint64(0)
    call(lib().vramfit_parse_size, size.encode("utf-8"), ctypes.byref(out))
    return out.value
