"""Chat completions: the prompt is the chat template's rendering, tokenized with control tokens."""
from __future__ import annotations

import json
from itertools import islice

import pytest

import vramfit
from conftest import shared

MESSAGES = [{"role": "system", "content": "You are a storyteller."},
            {"role": "user", "content": "Tell me about Lily."}]
CHATML = ("<|im_start|>system\nYou are a storyteller.<|im_end|>\n<|im_start|>user\nTell me about Lily.<|im_end|>\n"
          "<|im_start|>assistant\n")


@pytest.fixture
def chat(stories_path):
    """stories260K with room for a ChatML prompt (its markers are plain text there: many tokens)."""
    with vramfit.Llama(stories_path, device="cpu", n_ctx=256, n_threads=1) as llm:
        yield llm


def test_model_without_template_gets_chatml(stories):
    assert not stories.model.has_chat_template()
    assert stories.apply_chat_template(MESSAGES) == CHATML
    assert stories.apply_chat_template(MESSAGES, add_generation_prompt=False) == CHATML[:-len("<|im_start|>assistant\n")]


def test_chat_completion_continues_the_rendered_prompt(chat):
    result = chat.create_chat_completion(MESSAGES, temperature=0, max_tokens=12)
    assert result["object"] == "chat.completion" and result["id"].startswith("chatcmpl-")
    prompt_tokens = chat.tokenize(CHATML.encode(), add_bos=False, special=True)
    assert result["usage"]["prompt_tokens"] == len(prompt_tokens)
    # The same tokens through the raw generator: the answer is their text.
    tokens = list(islice(chat.generate(prompt_tokens, temp=0), 12))
    expected = b"".join(chat.model.token_to_piece(t) for t in tokens).decode()
    choice = result["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": expected}
    assert choice["finish_reason"] == "length" and result["usage"]["completion_tokens"] == 12


def test_streaming_chat_yields_role_then_the_same_content(chat):
    whole = chat.create_chat_completion(MESSAGES, temperature=0, max_tokens=12)
    chunks = list(chat.create_chat_completion(MESSAGES, temperature=0, max_tokens=12, stream=True))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"] == "length"
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert content == whole["choices"][0]["message"]["content"]


def test_chat_stop_strings(chat):
    free = chat.create_chat_completion(MESSAGES, temperature=0, max_tokens=24)["choices"][0]["message"]["content"]
    assert "Lily" in free
    stopped = chat.create_chat_completion(MESSAGES, temperature=0, max_tokens=24, stop=["Lily"])
    assert stopped["choices"][0]["message"]["content"] == free[:free.index("Lily")]
    assert stopped["choices"][0]["finish_reason"] == "stop"


def plain_cases(cases):
    """The cases whose messages are role + text (the C ABI's vramfit_chat_message)."""
    for case in cases["cases"]:
        if all(isinstance(m.get("content"), str) and set(m) <= {"role", "content"} for m in case["messages"]):
            yield case


@pytest.mark.parametrize("family", ["llama3", "qwen3", "gpt-oss"])
def test_shared_chat_cases_render_byte_for_byte(stories, family):
    """Model.chat_apply with the family's template and tokens: each shared case as transformers renders it."""
    cases = json.loads(shared(f"chat/{family}.json").read_text())
    checked = 0
    for case in plain_cases(cases):
        got = stories.model.chat_apply([(m["role"], m["content"]) for m in case["messages"]],
                                       case.get("add_generation_prompt", True), cases["template"],
                                       case.get("extra_context") or None, cases.get("fixed_date"),
                                       bos_token=cases.get("bos_token") or "", eos_token=cases.get("eos_token") or "")
        assert got == case["expected"], case["id"]
        checked += 1
    assert checked >= 3


def test_llama_chat_template_override_is_used(stories_path):
    """Llama(chat_template=...) replaces the model's; bos_token is then this model's "<s>"."""
    cases = json.loads(shared("chat/llama3.json").read_text())
    case = next(plain_cases(cases))
    with vramfit.Llama(stories_path, device="cpu", n_ctx=256, chat_template=cases["template"]) as llm:
        prompt = llm.apply_chat_template(case["messages"])
        assert prompt == case["expected"].replace(cases["bos_token"], "<s>")
        result = llm.create_chat_completion(case["messages"], temperature=0, max_tokens=4)
        assert result["usage"]["prompt_tokens"] == len(llm.tokenize(prompt.encode(), add_bos=False, special=True))
        assert llm.tokenize(prompt.encode(), add_bos=False, special=True)[0] == llm.token_bos()


def test_template_errors_raise_with_the_library_message(stories_path):
    with vramfit.Llama(stories_path, device="cpu", n_ctx=64, chat_template="ok\n{% for m in messages %}") as llm:
        with pytest.raises(vramfit.FormatError, match="line 2"):
            llm.create_chat_completion(MESSAGES)
