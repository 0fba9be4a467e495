"""Completions: greedy tokens as llama.cpp's, streaming = non-streaming, stop strings, lengths."""
from __future__ import annotations

from itertools import islice

import pytest

import vramfit
from vramfit.llama import _stop_prefix_len, _utf8_complete
from conftest import PROMPT, read_reference


def test_greedy_generation_reproduces_llama_cpp_tokens(stories):
    ref = read_reference("stories260K")
    prompt_tokens = stories.tokenize(PROMPT.encode())
    assert prompt_tokens == ref.tokens[:ref.n_prompt]
    n_generated = len(ref.tokens) - ref.n_prompt
    generated = list(islice(stories.generate(prompt_tokens, temp=0), n_generated))
    assert generated == ref.tokens[ref.n_prompt:]


def test_greedy_completion_text_is_the_reference_tokens_text(stories):
    ref = read_reference("stories260K")
    n_generated = len(ref.tokens) - ref.n_prompt
    expected = b"".join(stories.model.token_to_piece(t) for t in ref.tokens[ref.n_prompt:]).decode()
    assert expected.startswith(" girl named Lily.")
    result = stories(PROMPT, max_tokens=n_generated, temperature=0)
    assert result["object"] == "text_completion"
    assert result["model"] == stories.model_path
    assert result["id"].startswith("cmpl-")
    choice = result["choices"][0]
    assert choice == {"text": expected, "index": 0, "logprobs": None, "finish_reason": "length"}
    assert result["usage"] == {"prompt_tokens": ref.n_prompt, "completion_tokens": n_generated,
                               "total_tokens": len(ref.tokens)}
    # Token ids as the prompt: the same completion.
    same = stories.create_completion(ref.tokens[:ref.n_prompt], max_tokens=n_generated, temperature=0)
    assert same["choices"][0]["text"] == expected


def streamed(llm, prompt, **kwargs):
    chunks = list(llm(prompt, stream=True, **kwargs))
    for chunk in chunks[:-1]:
        assert chunk["choices"][0]["finish_reason"] is None and chunk["object"] == "text_completion"
    return "".join(c["choices"][0]["text"] for c in chunks), chunks[-1]


@pytest.mark.parametrize("kwargs", [
    dict(max_tokens=24, temperature=0),
    dict(max_tokens=40, temperature=0.9, seed=1234),  # sampling: the seed makes both runs draw alike
    dict(max_tokens=40, temperature=0, stop=["park"]),
    dict(max_tokens=40, temperature=0, stop=[". One", "zzz"]),
])
def test_streaming_yields_the_same_text_as_non_streaming(stories, kwargs):
    whole = stories(PROMPT, **kwargs)
    text, last = streamed(stories, PROMPT, **kwargs)
    assert text == whole["choices"][0]["text"]
    assert last["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert last["usage"] == whole["usage"]


def test_stop_string_ends_the_text_before_it(stories):
    full = stories(PROMPT, max_tokens=24, temperature=0)["choices"][0]["text"]
    assert "park" in full
    result = stories(PROMPT, max_tokens=24, temperature=0, stop="park")
    assert result["choices"][0]["text"] == full[:full.index("park")]
    assert result["choices"][0]["finish_reason"] == "stop"
    # Streaming holds back text that may start the stop string ("park" is several tokens here), so
    # no chunk shows a piece of it.
    assert len(stories.tokenize(b" park", add_bos=False)) > 1
    text, _ = streamed(stories, PROMPT, max_tokens=24, temperature=0, stop=["park"])
    assert text == full[:full.index("park")]


def test_generation_runs_until_the_context_is_full(stories):
    result = stories(PROMPT, max_tokens=None, temperature=0)
    n_prompt = result["usage"]["prompt_tokens"]
    assert result["choices"][0]["finish_reason"] == "length"
    # The cache is full, and one more token was sampled from its last logits (it needs no slot).
    assert stories.n_tokens == stories.n_ctx() == 64
    assert result["usage"]["completion_tokens"] == 64 - n_prompt + 1


def test_seeds_repeat_and_calls_continue_the_sequence(stories_path):
    def three_calls():
        with vramfit.Llama(stories_path, device="cpu", n_ctx=64, n_threads=1, seed=7) as llm:
            return [llm(PROMPT, max_tokens=20, temperature=1.0)["choices"][0]["text"] for _ in range(3)]
    first = three_calls()
    assert three_calls() == first  # a new Llama with the same seed repeats the sequence
    assert len(set(first)) > 1  # each call draws with the next seed


def test_tokenize_detokenize_round_trip(stories):
    tokens = stories.tokenize(PROMPT.encode())
    assert tokens[0] == stories.token_bos() == 1
    assert stories.tokenize(PROMPT.encode(), add_bos=False) == tokens[1:]
    assert stories.detokenize(tokens[1:]) == PROMPT.encode()
    assert stories.detokenize(tokens[4:], prev_tokens=tokens[1:4]) == PROMPT.encode()[len(b"Once upon a"):]
    # special=True reads control tokens written in the text.
    assert stories.tokenize(b"<s>Once", add_bos=False, special=True) == stories.tokenize(b"Once")
    assert stories.tokenize(b"<s>Once", add_bos=False)[0] != stories.token_bos()
    with pytest.raises(TypeError):
        stories.tokenize("text")


def test_reset_and_eval(stories):
    tokens = stories.tokenize(PROMPT.encode())
    stories.eval(tokens)
    assert stories.n_tokens == len(tokens)
    stories.eval(tokens[1:3])
    assert stories.n_tokens == len(tokens) + 2
    stories.reset()
    assert stories.n_tokens == 0
    assert stories.n_ctx() == 64 and stories.n_vocab() == 512


def test_utf8_and_stop_hold_back():
    euro = "€".encode()  # 3 bytes
    assert _utf8_complete(b"ab" + euro, 5) == 5
    assert _utf8_complete(b"ab" + euro[:2], 4) == 2
    assert _utf8_complete(b"ab" + euro[:1], 3) == 2
    assert _utf8_complete(b"ab", 2) == 2
    assert _stop_prefix_len(b"hello wor", [b"world"]) == 3
    assert _stop_prefix_len(b"hello", [b"world"]) == 0
    assert _stop_prefix_len(b"abc", [b"c!", b"bc!"]) == 2
