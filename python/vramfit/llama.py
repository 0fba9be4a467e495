"""vramfit.Llama: llama-cpp-python's Llama class (same names, same OpenAI-shaped results) over vramfit.

The generation loop lives here, on top of decode + sampler, as in llama-cpp-python: the prompt is
decoded in one batch (only the part after what the KV cache already holds from the previous call),
then each sampled token is decoded alone. Text is assembled from each token's
bytes; it is released at UTF-8 character boundaries and never past the start of a possible stop
string, so streaming and non-streaming calls produce the same text.
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .native import Closable, Context, Model, OffloadOptions, ProgressCallback, Sampler, Size

DEFAULT_SEED = 0xFFFFFFFF  # the library's default: an ordinary, fixed seed
_CHATML_END = "<|im_end|>"  # what the built-in ChatML format ends a turn with (plain text there)


def _utf8_complete(data: bytes, end: int) -> int:
    """The largest n <= end such that data[:n] does not end inside a UTF-8 character."""
    i = end
    while i > 0 and end - i < 4 and (data[i - 1] & 0xC0) == 0x80:
        i -= 1  # walk back over continuation bytes to the lead byte
    if i == 0:
        return end
    lead = data[i - 1]
    need = 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 1
    return end if end - (i - 1) >= need else i - 1


def _stop_prefix_len(data: bytes, stops: Sequence[bytes]) -> int:
    """The length of the longest tail of data that is a proper prefix of a stop string (held back)."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(data)), best, -1):
            if data.endswith(stop[:n]):
                best = n
                break
    return best


class Llama(Closable):
    """A GGUF model and one inference context, shaped like llama-cpp-python's ``Llama``.

    >>> llm = Llama("model.gguf", n_ctx=2048, vram_budget="11.5GiB")
    >>> llm("Once upon a time", max_tokens=32)["choices"][0]["text"]

    Parameters (llama-cpp-python's names where it has them):
      model_path     the GGUF file.
      n_ctx          tokens the KV cache holds; 0: the model's trained length (at most 4096 when a
                     device is planned). Default 512, as llama-cpp-python.
      n_batch        tokens per forward pass while decoding a long prompt.
      n_threads      CPU threads; None: all cores.
      n_gpu_layers   whole layers on the GPU, front to back (-1: all); implies strategy="layers".
      vram_budget    the hard cap of device bytes: an int or a string such as "11.5GiB", "800MB";
                     None: the device's free memory minus ``reserve``.
      strategy       "fastest" (default: maximize predicted tokens/s), "layers", "manual".
      override_tensor  [(regex, "gpu"|"cpu"), ...]: llama.cpp's --override-tensor; implies "manual".
      cpu_moe, n_cpu_moe  keep all (or layers 0..n-1's) expert groups in host memory.
      device         "auto" (a GPU when there is one), "cpu", "cuda[:N]", "sim[:CAPACITY]".
      kv_type        "f16" (default), "f32", "q8_0".
      seed           the sampler seed; each call without seed= uses the next one, so calls differ
                     but a new Llama with the same seed repeats the same sequence.
      chat_template  Jinja source replacing the model's chat template (None: the model's, or ChatML).
      progress_callback  called with the fraction loaded (0..1); return False to cancel the load
                     (raises vramfit.CancelledError).
      verbose        True attaches a stderr handler to the "vramfit" logger (INFO); by default the
                     library's messages go to logging only, and nothing prints.

    Errors raise vramfit.Error subclasses (IoError, FormatError, UnsupportedError,
    BudgetExceededError, ContextFullError, InvalidArgumentError ...) with the library's message.
    close(), or ``with Llama(...) as llm:``, frees the native objects at once. One thread at a time.
    """

    def __init__(self, model_path: str, *, n_ctx: int = 512, n_batch: int = 512, n_threads: Optional[int] = None,
                 n_gpu_layers: Optional[int] = None, vram_budget: Optional[Size] = None,
                 strategy: Optional[str] = None, override_tensor: Optional[Sequence[Tuple[str, str]]] = None,
                 cpu_moe: bool = False, n_cpu_moe: int = 0, reserve: Optional[Size] = None, device: str = "auto",
                 kv_type: str = "f16", seed: int = DEFAULT_SEED, chat_template: Optional[str] = None,
                 progress_callback: Optional[ProgressCallback] = None, verbose: bool = False):
        self._model: Optional[Model] = None
        self._ctx: Optional[Context] = None
        if verbose:
            _attach_stderr_handler()
        self.model_path = str(model_path)
        offload = OffloadOptions(vram_budget, strategy, n_gpu_layers, override_tensor, cpu_moe, n_cpu_moe, reserve)
        self._model = Model(self.model_path, device=device, offload=offload, n_ctx=n_ctx, n_batch=n_batch,
                            kv_type=kv_type, progress_callback=progress_callback)
        self._ctx = Context(self._model, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads or 0, kv_type=kv_type)
        self._seed = seed
        self._calls = 0
        self.chat_template = chat_template

    # ---- lifetime ----

    def close(self) -> None:
        """Frees the context and the model now; the object is unusable afterwards."""
        for owner in (self._ctx, self._model):
            if owner is not None:
                owner.close()
        self._ctx = self._model = None

    @property
    def model(self) -> Model:
        if self._model is None:
            raise ValueError("this Llama is closed")
        return self._model

    @property
    def context(self) -> Context:
        if self._ctx is None:
            raise ValueError("this Llama is closed")
        return self._ctx

    # ---- llama-cpp-python's small accessors ----

    def n_ctx(self) -> int:
        """Tokens the context holds at most."""
        return self.context.n_ctx()

    def n_vocab(self) -> int:
        return self.model.n_vocab()

    def n_ctx_train(self) -> int:
        return self.model.n_ctx_train()

    def token_bos(self) -> int:
        return self.model.bos()

    def token_eos(self) -> int:
        return self.model.eos()

    @property
    def n_tokens(self) -> int:
        """Tokens in the KV cache now."""
        return self.context.n_past()

    def set_seed(self, seed: int) -> None:
        self._seed, self._calls = seed, 0

    def reset(self) -> None:
        """Forgets every token in the context (the KV cache stays allocated), so the next completion
        reuses nothing of the previous one."""
        self.context.clear()

    def memory(self) -> Dict[str, Any]:
        """Bytes the context uses per device and category:
        {"devices": [{"device": "cpu", "weights", "kv", "scratch", "staging", "overhead", "peak",
        "budget", "total"}, ...], "total": N}; the host first, then the planned device."""
        return self.context.memory()

    # ---- tokens ----

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> List[int]:
        """Token ids of UTF-8 bytes; add_bos prepends BOS when the vocabulary asks for it; special
        recognizes control tokens ("<|im_start|>") written in the text."""
        if isinstance(text, str):
            raise TypeError("tokenize() takes bytes (text.encode('utf-8')), as llama-cpp-python's")
        return self.model.tokenize(bytes(text), add_bos, special)

    def detokenize(self, tokens: Sequence[int], prev_tokens: Optional[Sequence[int]] = None) -> bytes:
        """The bytes of tokens; with prev_tokens, only what tokens add after them."""
        if prev_tokens:
            before = self.model.detokenize(list(prev_tokens))
            return self.model.detokenize(list(prev_tokens) + list(tokens))[len(before):]
        return self.model.detokenize(list(tokens)) if tokens else b""

    def eval(self, tokens: Sequence[int], all_logits: bool = False) -> None:
        """Decodes tokens after those in the context (ContextFullError when they do not fit)."""
        self.context.decode(list(tokens), all_logits)

    def get_logits(self, i: int = -1):
        """A copy (array of float32) of the logits of token i of the last eval (-1: its last token)."""
        return self.context.logits(i)

    # ---- generation ----

    def _sampler(self, temperature: float, top_k: int, top_p: float, min_p: float, typical_p: float,
                 repeat_penalty: float, frequency_penalty: float, presence_penalty: float,
                 seed: Optional[int]) -> Sampler:
        if seed is None:
            seed = self._seed + self._calls
            self._calls += 1
        return Sampler(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, typical_p=typical_p,
                       repeat_penalty=repeat_penalty, frequency_penalty=frequency_penalty,
                       presence_penalty=presence_penalty, seed=seed)

    def generate(self, tokens: Sequence[int], top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
                 typical_p: float = 1.0, temp: float = 0.80, repeat_penalty: float = 1.0,
                 frequency_penalty: float = 0.0, presence_penalty: float = 0.0, reset: bool = True,
                 seed: Optional[int] = None) -> Iterator[int]:
        """Yields sampled token ids after tokens without end (EOS included), as llama-cpp-python's
        generate(): stop iterating when you have enough. reset=False continues after what the
        context holds. Raises ContextFullError when the next token does not fit."""
        with self._sampler(temp, top_k, top_p, min_p, typical_p, repeat_penalty, frequency_penalty,
                           presence_penalty, seed) as sampler:
            if reset:
                self.reset()
            sampler.accept_all(tokens)
            self.eval(tokens)
            while True:
                token = sampler.sample(self.context)
                sampler.accept(token)
                yield token
                self.eval([token])

    def _complete(self, prompt_tokens: List[int], max_tokens: Optional[int], stop: Sequence[str],
                  sampler: Sampler, state: Dict[str, Any]) -> Iterator[str]:
        """Yields the completion's text in pieces; state gets finish_reason and completion_tokens."""
        ctx = self.context
        stops = [s.encode("utf-8") for s in stop if s]
        limit = max_tokens if max_tokens is not None and max_tokens > 0 else None
        data = b""
        sent = 0  # bytes of data already yielded
        state.update(finish_reason="length", completion_tokens=0)
        sampler.accept_all(prompt_tokens)
        # The cache still holds the previous call's prompt and answer: a follow-up turn or a longer
        # prompt decodes only what differs (llama-cpp-python's cache). Same logits as a fresh start.
        state["cached_tokens"] = ctx.decode_reusing_prefix(prompt_tokens)
        while True:
            token = sampler.sample(ctx)
            sampler.accept(token)
            if self.model.is_eog(token):
                state["finish_reason"] = "stop"
                break
            state["completion_tokens"] += 1
            data += self.model.token_to_piece(token)
            hit = min((i for i in (data.find(s, max(0, sent - len(s))) for s in stops) if i >= 0), default=-1)
            if hit >= 0:
                data = data[:hit]
                state["finish_reason"] = "stop"
                break
            ready = _utf8_complete(data, len(data) - _stop_prefix_len(data, stops))
            if ready > sent:
                yield data[sent:ready].decode("utf-8", errors="replace")
                sent = ready
            if (limit is not None and state["completion_tokens"] >= limit) or ctx.n_past() >= ctx.n_ctx():
                break  # finish_reason "length"
            ctx.decode([token])
        if len(data) > sent:
            yield data[sent:].decode("utf-8", errors="replace")

    def create_completion(self, prompt: Union[str, List[int]], suffix: Optional[str] = None,
                          max_tokens: Optional[int] = 16, temperature: float = 0.8, top_p: float = 0.95,
                          min_p: float = 0.05, typical_p: float = 1.0, logprobs: Optional[int] = None,
                          echo: bool = False, stop: Optional[Union[str, List[str]]] = None,
                          frequency_penalty: float = 0.0, presence_penalty: float = 0.0,
                          repeat_penalty: float = 1.0, top_k: int = 40, stream: bool = False,
                          seed: Optional[int] = None) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """Completes prompt (text, or token ids) like OpenAI's completions endpoint.

        Returns {"id", "object": "text_completion", "created", "model", "choices": [{"text",
        "index", "logprobs": None, "finish_reason": "stop"|"length"}], "usage": {"prompt_tokens",
        "completion_tokens", "total_tokens", "prompt_tokens_details": {"cached_tokens"}}}; with stream=True
        an iterator of chunks of the same shape whose texts concatenate to that text (the last one carries finish_reason).
        temperature <= 0 is greedy. Generation ends at an end-of-generation token or a stop string
        (not included; "stop"), after max_tokens (None or <= 0: until the context is full) or when
        the context is full ("length"). A prompt longer than the context raises ContextFullError.
        The KV cache of the longest common prefix with the previous call's prompt and answer is kept
        (cached_tokens in usage; reset() forgets it); the results equal a fresh Llama's.
        """
        if suffix is not None or logprobs is not None:
            raise NotImplementedError("vramfit does not implement suffix (infill) or logprobs yet")
        if isinstance(prompt, str):
            prompt_tokens = self.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        else:
            prompt_tokens = list(prompt)
        stop_list = [stop] if isinstance(stop, str) else list(stop or [])
        sampler = self._sampler(temperature, top_k, top_p, min_p, typical_p, repeat_penalty, frequency_penalty,
                                presence_penalty, seed)
        chunks = self._completion_chunks(prompt_tokens, max_tokens, stop_list, sampler, echo)
        return chunks if stream else _join_completion(chunks)

    def _completion_chunks(self, prompt_tokens: List[int], max_tokens: Optional[int], stop: List[str],
                           sampler: Sampler, echo: bool) -> Iterator[Dict[str, Any]]:
        completion_id, created = f"cmpl-{uuid.uuid4()}", int(time.time())
        state: Dict[str, Any] = {}

        def chunk(text: str, finish_reason: Optional[str]) -> Dict[str, Any]:
            return {"id": completion_id, "object": "text_completion", "created": created, "model": self.model_path,
                    "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]}

        with sampler:
            if echo:
                yield chunk(self.detokenize(prompt_tokens).decode("utf-8", errors="replace"), None)
            for text in self._complete(prompt_tokens, max_tokens, stop, sampler, state):
                yield chunk(text, None)
        last = chunk("", state["finish_reason"])
        n = state["completion_tokens"]
        last["usage"] = _usage(len(prompt_tokens), n, state["cached_tokens"])
        yield last

    def __call__(self, prompt: Union[str, List[int]], **kwargs) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """create_completion(prompt, ...)."""
        return self.create_completion(prompt, **kwargs)

    # ---- chat ----

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True,
                            template_vars: Optional[Mapping[str, Any]] = None) -> str:
        """The prompt text of messages ([{"role", "content"}]) in the model's chat template (or
        this Llama's chat_template; ChatML for a model without one), as transformers'
        apply_chat_template renders it. template_vars become template variables, e.g.
        {"enable_thinking": False} for Qwen3."""
        pairs = [(str(m["role"]), _message_text(m.get("content"))) for m in messages]
        return self.model.chat_apply(pairs, add_generation_prompt, self.chat_template, template_vars)

    def create_chat_completion(self, messages: Sequence[Mapping[str, Any]], temperature: float = 0.2,
                               top_p: float = 0.95, top_k: int = 40, min_p: float = 0.05, typical_p: float = 1.0,
                               stream: bool = False, stop: Optional[Union[str, List[str]]] = None,
                               seed: Optional[int] = None, max_tokens: Optional[int] = None,
                               presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                               repeat_penalty: float = 1.0, template_vars: Optional[Mapping[str, Any]] = None
                               ) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """Answers a conversation like OpenAI's chat completions endpoint, using the chat template.

        Returns {"id", "object": "chat.completion", "created", "model", "choices": [{"index",
        "message": {"role": "assistant", "content"}, "logprobs": None, "finish_reason"}], "usage"};
        with stream=True an iterator of "chat.completion.chunk" dicts (delta {"role"}, then
        {"content"} pieces, then {} with finish_reason). The prompt is tokenized with control tokens
        recognized and no extra BOS (the template writes it when the model wants one).
        """
        prompt = self.apply_chat_template(messages, True, template_vars)
        prompt_tokens = self.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        stop_list = [stop] if isinstance(stop, str) else list(stop or [])
        if not self.model.has_chat_template() and self.chat_template is None:
            stop_list.append(_CHATML_END)  # ChatML's end of turn is text for a model without the token
        sampler = self._sampler(temperature, top_k, top_p, min_p, typical_p, repeat_penalty, frequency_penalty,
                                presence_penalty, seed)
        chunks = self._chat_chunks(prompt_tokens, max_tokens, stop_list, sampler)
        return chunks if stream else _join_chat(chunks)

    def _chat_chunks(self, prompt_tokens: List[int], max_tokens: Optional[int], stop: List[str],
                     sampler: Sampler) -> Iterator[Dict[str, Any]]:
        completion_id, created = f"chatcmpl-{uuid.uuid4()}", int(time.time())

        def chunk(delta: Dict[str, str], finish_reason: Optional[str]) -> Dict[str, Any]:
            return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": self.model_path,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

        state: Dict[str, Any] = {}
        yield chunk({"role": "assistant"}, None)
        with sampler:
            for text in self._complete(prompt_tokens, max_tokens, stop, sampler, state):
                yield chunk({"content": text}, None)
        last = chunk({}, state["finish_reason"])
        n = state["completion_tokens"]
        last["usage"] = _usage(len(prompt_tokens), n, state["cached_tokens"])
        yield last


def _usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> Dict[str, Any]:
    """OpenAI's usage; cached_tokens: prompt tokens whose KV cache was kept from the previous call."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


def _message_text(content: Any) -> str:
    """A message's text: a string, None (""), or OpenAI's list of parts (their "text" parts joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    raise TypeError(f"message content must be a string or a list of parts, not {type(content).__name__}")


def _join_completion(chunks: Iterator[Dict[str, Any]]) -> Dict[str, Any]:
    texts = []
    for chunk in chunks:
        texts.append(chunk["choices"][0]["text"])
    result = dict(chunk, object="text_completion")  # the last chunk: ids, finish_reason, usage
    result["choices"] = [dict(chunk["choices"][0], text="".join(texts))]
    return result


def _join_chat(chunks: Iterator[Dict[str, Any]]) -> Dict[str, Any]:
    texts = []
    for chunk in chunks:
        texts.append(chunk["choices"][0]["delta"].get("content", ""))
    choice = chunk["choices"][0]
    return {"id": chunk["id"], "object": "chat.completion", "created": chunk["created"], "model": chunk["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(texts)},
                         "logprobs": None, "finish_reason": choice["finish_reason"]}],
            "usage": chunk["usage"]}


def _attach_stderr_handler() -> None:
    logger = logging.getLogger("vramfit")
    if not any(getattr(h, "_vramfit_verbose", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler._vramfit_verbose = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("vramfit: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
