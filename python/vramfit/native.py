"""Owners of the native objects: Model, Context, Sampler, one handle each, freed by close().

These are thin: each method is one C call. ``vramfit.Llama`` builds the familiar API on them; use
them directly for what it does not cover (several contexts over one model, your own decode loop).
A Model may be used from several threads; a Context or Sampler by one thread at a time.
"""
from __future__ import annotations

import array
import ctypes
import json
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native, errors
from ._native import call, call_text, call_tokens, init_params, lib

Size = Union[int, str]
ProgressCallback = Callable[[float], Optional[bool]]

_STRATEGIES = {"fastest": 0, "layers": 1, "manual": 2}
_KV_TYPES = {"f16": 0, "f32": 1, "q8_0": 2}
ALL_LAYERS = 1 << 30  # n_gpu_layers=-1 (llama-cpp-python's "all"): more than any model has


def _enum(value: str, names: Mapping[str, int], what: str) -> int:
    try:
        return names[value.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"{what}={value!r} is not one of {', '.join(names)}") from None


class OffloadOptions:
    """The offload policy (capi's vramfit_offload_policy) in Python terms; see Llama for the fields."""

    def __init__(self, vram_budget: Optional[Size] = None, strategy: Optional[str] = None,
                 n_gpu_layers: Optional[int] = None, override_tensor: Optional[Sequence[Tuple[str, str]]] = None,
                 cpu_moe: bool = False, n_cpu_moe: int = 0, reserve: Optional[Size] = None, min_ctx: int = 0):
        self.vram_budget = vram_budget
        self.strategy = strategy
        self.n_gpu_layers = n_gpu_layers
        self.override_tensor = list(override_tensor or [])
        self.cpu_moe = cpu_moe
        self.n_cpu_moe = n_cpu_moe
        self.reserve = reserve
        self.min_ctx = min_ctx

    def to_c(self) -> Tuple[_native.OffloadPolicy, list]:
        """The C struct and the objects it points into (keep both alive during the call)."""
        policy = init_params(lib().vramfit_offload_policy_init, _native.OffloadPolicy)
        strategy = self.strategy
        if strategy is None:  # as the CLI: -ot implies manual, -ngl alone whole layers
            strategy = "manual" if self.override_tensor else "layers" if self.n_gpu_layers is not None else "fastest"
        policy.strategy = _enum(strategy, _STRATEGIES, "strategy")
        if self.vram_budget is not None:
            policy.vram_budget_bytes = _native.parse_size(self.vram_budget)
        if self.reserve is not None:
            policy.reserve_bytes = _native.parse_size(self.reserve)
        if self.n_gpu_layers is not None:
            policy.n_gpu_layers = ALL_LAYERS if self.n_gpu_layers == -1 else self.n_gpu_layers
        policy.min_ctx = self.min_ctx
        policy.cpu_moe = self.cpu_moe
        policy.n_cpu_moe = self.n_cpu_moe
        keep: list = []
        if self.override_tensor:
            rules = (_native.OffloadRule * len(self.override_tensor))()
            for i, (pattern, where) in enumerate(self.override_tensor):
                if where not in ("gpu", "cpu"):
                    raise ValueError(f"override_tensor[{i}]: place {where!r} is not 'gpu' or 'cpu'")
                encoded = pattern.encode("utf-8")
                keep.append(encoded)
                rules[i].pattern, rules[i].to_device = encoded, where == "gpu"
            policy.rules, policy.n_rules = rules, len(self.override_tensor)
            keep.append(rules)
        return policy, keep


def _model_params(device: str, offload: OffloadOptions, n_ctx: int, n_batch: int, kv_type: str,
                  progress: Optional[ctypes._CFuncPtr] = None) -> Tuple[_native.ModelParams, list]:
    params = init_params(lib().vramfit_model_params_init, _native.ModelParams)
    policy, keep = offload.to_c()
    device_bytes = device.encode("utf-8")
    params.device = device_bytes
    params.offload = ctypes.pointer(policy)
    params.n_ctx, params.n_batch = n_ctx, n_batch
    params.kv_type = _enum(kv_type, _KV_TYPES, "kv_type")
    if progress is not None:
        params.progress = progress
    return params, keep + [policy, device_bytes, progress]


class Closable:
    """close() on leaving a ``with`` block and when garbage-collected (subclasses define close())."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class _Handle(Closable):
    """One native pointer and the function that frees it; close() is idempotent."""

    _free_name = ""

    def __init__(self) -> None:
        self._ptr: Optional[int] = None

    @property
    def ptr(self) -> int:
        if self._ptr is None:
            raise ValueError(f"this {type(self).__name__} is closed")
        return self._ptr

    def close(self) -> None:
        """Frees the native object now (later calls raise ValueError)."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            getattr(lib(), self._free_name)(ptr)


class Model(_Handle):
    """A loaded GGUF model (vramfit_model): weights memory-mapped, the planned part on the device."""

    _free_name = "vramfit_model_free"

    def __init__(self, path: str, *, device: str = "auto", offload: Optional[OffloadOptions] = None,
                 n_ctx: int = 0, n_batch: int = 512, kv_type: str = "f16",
                 progress_callback: Optional[ProgressCallback] = None):
        super().__init__()
        self.path = str(path)
        raised: List[BaseException] = []

        def on_progress(fraction: float, _user_data) -> bool:
            try:
                return progress_callback(fraction) is not False  # type: ignore[misc]
            except BaseException as e:  # stop the load, re-raise after it returns
                raised.append(e)
                return False

        progress = _native.PROGRESS_CALLBACK(on_progress) if progress_callback else None
        # `keep` holds what params points into (strings, the policy, the callback) until the call returns.
        params, keep = _model_params(device, offload or OffloadOptions(), n_ctx, n_batch, kv_type, progress)
        out = ctypes.c_void_p()
        try:
            call(lib().vramfit_model_load, self.path.encode("utf-8"), ctypes.byref(params), ctypes.byref(out))
        except errors.CancelledError:
            if raised:
                raise raised[0] from None
            raise
        self._ptr = out.value
        self._pieces: Dict[int, bytes] = {}

    def n_vocab(self) -> int:
        return lib().vramfit_model_n_vocab(self.ptr)

    def n_ctx_train(self) -> int:
        return lib().vramfit_model_n_ctx_train(self.ptr)

    def bos(self) -> int:
        return lib().vramfit_model_bos(self.ptr)

    def eos(self) -> int:
        return lib().vramfit_model_eos(self.ptr)

    def is_eog(self, token: int) -> bool:
        return bool(lib().vramfit_model_is_eog(self.ptr, token))

    def has_chat_template(self) -> bool:
        return bool(lib().vramfit_model_has_chat_template(self.ptr))

    def tokenize(self, text: bytes, add_special: bool = True, parse_special: bool = False) -> List[int]:
        # At most about one token per byte (+ BOS and a leading-space token): one call, rarely two.
        return call_tokens(lib().vramfit_tokenize_special, self.ptr, text, len(text), add_special, parse_special,
                           capacity=len(text) + 4)

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        ids = (_native.c_token * len(tokens))(*tokens)
        return call_text(lib().vramfit_detokenize, self.ptr, ids, len(tokens))

    def token_to_piece(self, token: int) -> bytes:
        """The bytes of one token (possibly part of a UTF-8 character), cached per token."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = call_text(lib().vramfit_token_to_piece, self.ptr, token)
        return piece

    def chat_apply(self, messages: Sequence[Tuple[str, str]], add_generation_prompt: bool = True,
                   chat_template: Optional[str] = None, template_vars: Optional[Mapping[str, Any]] = None,
                   date: Optional[str] = None, bos_token: Optional[str] = None,
                   eos_token: Optional[str] = None) -> str:
        """The prompt text of messages [(role, content)], rendered with the model's chat template
        (or chat_template; ChatML for a model without one). template_vars become template variables;
        date ("YYYY-MM-DD") is what strftime_now() formats (None: today); bos_token / eos_token
        replace the model's token texts ("" leaves them undefined)."""
        params = init_params(lib().vramfit_chat_params_init, _native.ChatParams)
        params.add_generation_prompt = 1 if add_generation_prompt else 0
        extra = json.dumps(dict(template_vars)) if template_vars else None
        keep = [s.encode("utf-8") if s is not None else None for s in (chat_template, extra, date, bos_token, eos_token)]
        params.chat_template, params.extra_json, params.date, params.bos_token, params.eos_token = keep
        encoded = [(role.encode("utf-8"), content.encode("utf-8")) for role, content in messages]
        array_type = _native.ChatMessage * max(1, len(encoded))
        c_messages = array_type(*[_native.ChatMessage(r, c) for r, c in encoded])
        text = call_text(lib().vramfit_chat_apply, self.ptr, ctypes.byref(params), c_messages, len(encoded),
                         capacity=4096)  # a larger first guess: a too small buffer renders twice
        return text.decode("utf-8", errors="replace")


class Context(_Handle):
    """An inference session over a Model (vramfit_context): the KV cache, scratch, a thread pool."""

    _free_name = "vramfit_context_free"

    def __init__(self, model: Model, *, n_ctx: int = 0, n_batch: int = 512, n_threads: int = 0,
                 kv_type: str = "f16"):
        super().__init__()
        params = init_params(lib().vramfit_context_params_init, _native.ContextParams)
        params.n_ctx, params.n_batch, params.n_threads = n_ctx, n_batch, n_threads
        params.kv_type = _enum(kv_type, _KV_TYPES, "kv_type")
        out = ctypes.c_void_p()
        call(lib().vramfit_context_create, model.ptr, ctypes.byref(params), ctypes.byref(out))
        self._ptr = out.value
        self.model = model  # the Python owner stays alive while this context uses it

    def decode(self, tokens: Sequence[int], all_logits: bool = False) -> None:
        """Appends tokens after what the context holds and runs the model over them."""
        ids = (_native.c_token * len(tokens))(*tokens)
        call(lib().vramfit_decode, self.ptr, ids, len(tokens), all_logits)

    def logits(self, i: int = -1) -> "array.array[float]":
        """A copy of the n_vocab logits of token i of the last decode (-1: its last token)."""
        row = lib().vramfit_get_logits(self.ptr, i)
        if not row:
            raise errors.InvalidArgumentError(_native.last_error(), 1)
        return array.array("f", ctypes.string_at(row, 4 * self.model.n_vocab()))

    def n_past(self) -> int:
        return lib().vramfit_context_n_past(self.ptr)

    def n_ctx(self) -> int:
        return lib().vramfit_context_n_ctx(self.ptr)

    def clear(self) -> None:
        lib().vramfit_context_clear(self.ptr)

    def tokens(self) -> List[int]:
        """The tokens the KV cache holds, in order (n_past of them)."""
        n = ctypes.c_size_t()
        ids = lib().vramfit_context_tokens(self.ptr, ctypes.byref(n))
        return ids[:n.value] if n.value else []  # an empty cache may answer NULL

    def truncate(self, n: int) -> None:
        """Forgets every token after the first n (see truncate_floor in the C header for sliding windows)."""
        call(lib().vramfit_context_truncate, self.ptr, n)

    def decode_reusing_prefix(self, tokens: Sequence[int]) -> int:
        """Makes the KV cache hold exactly tokens: keeps the longest prefix it already holds, decodes
        only the rest (at least the last token, whose logits logits() then returns). Returns the
        number of tokens kept. The logits equal a fresh context's decoding the same tokens."""
        ids = (_native.c_token * len(tokens))(*tokens)
        reused = ctypes.c_int32()
        call(lib().vramfit_decode_reusing_prefix, self.ptr, ids, len(tokens), ctypes.byref(reused))
        return reused.value

    def memory(self) -> Dict[str, Any]:
        """Bytes per device and category: {"devices": [{"device", "weights", "kv", ...}], "total"}."""
        return json.loads(call_text(lib().vramfit_context_memory_json, self.ptr))


class Sampler(_Handle):
    """The sampler chain (vramfit_sampler): penalties, top-k, typical-p, top-p, min-p, temperature, draw."""

    _free_name = "vramfit_sampler_free"

    def __init__(self, *, temperature: float = 0.8, top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
                 typical_p: float = 1.0, repeat_penalty: float = 1.0, frequency_penalty: float = 0.0,
                 presence_penalty: float = 0.0, penalty_last_n: int = 64, seed: int = 0xFFFFFFFF):
        super().__init__()
        p = init_params(lib().vramfit_sampler_params_init, _native.SamplerParams)
        p.temperature, p.top_k, p.top_p, p.min_p, p.typical_p = temperature, top_k, top_p, min_p, typical_p
        p.repeat_penalty, p.frequency_penalty, p.presence_penalty = repeat_penalty, frequency_penalty, presence_penalty
        p.penalty_last_n, p.seed = penalty_last_n, seed & 0xFFFFFFFFFFFFFFFF
        out = ctypes.c_void_p()
        call(lib().vramfit_sampler_create, ctypes.byref(p), ctypes.byref(out))
        self._ptr = out.value

    def sample(self, context: Context, i: int = -1) -> int:
        """A token drawn from row i of the context's last logits (not recorded: see accept)."""
        token = _native.c_token()
        call(lib().vramfit_sampler_sample, self.ptr, context.ptr, i, ctypes.byref(token))
        return token.value

    def accept(self, token: int) -> None:
        """Records a token (prompt or generated) for the repetition penalties."""
        lib().vramfit_sampler_accept(self.ptr, token)

    def accept_all(self, tokens: Iterable[int]) -> None:
        for token in tokens:
            self.accept(token)

    def reset(self) -> None:
        lib().vramfit_sampler_reset(self.ptr)


def plan(model_path: str, *, vram_budget: Optional[Size] = None, n_ctx: int = 0, n_batch: int = 512,
         kv_type: str = "f16", strategy: Optional[str] = None, n_gpu_layers: Optional[int] = None,
         override_tensor: Optional[Sequence[Tuple[str, str]]] = None, cpu_moe: bool = False, n_cpu_moe: int = 0,
         reserve: Optional[Size] = None, min_ctx: int = 0, table: bool = False) -> Any:
    """Plans where each tensor and KV layer of a GGUF file goes under a VRAM budget, from its header
    alone (no GPU, no tensor data needed), as ``vramfit plan --json`` does.

    Returns the plan's JSON as a dict (budget_bytes, device_total_bytes, by_category, layers,
    tensors, predicted_tg_tok_s ...), or with ``table=True`` the human-readable table. n_ctx 0:
    the model's trained length, at most 4096 (what loading the model would plan). Raises
    BudgetExceededError naming the smallest budget that works, IoError, FormatError,
    InvalidArgumentError (a bad size string).
    """
    offload = OffloadOptions(vram_budget, strategy, n_gpu_layers, override_tensor, cpu_moe, n_cpu_moe, reserve,
                             min_ctx)
    params, keep = _model_params("auto", offload, n_ctx, n_batch, kv_type)  # keep: alive during the call
    out = ctypes.c_void_p()
    call(lib().vramfit_plan_create, str(model_path).encode("utf-8"), ctypes.byref(params), None, ctypes.byref(out))
    try:
        if table:
            return lib().vramfit_plan_table(out.value).decode("utf-8")
        return json.loads(lib().vramfit_plan_json(out.value).decode("utf-8"))
    finally:
        lib().vramfit_plan_free(out.value)
