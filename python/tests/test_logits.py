"""Logits through the binding: bit-identical to the C++ API's, and within the C++ test's bar of llama.cpp's."""
from __future__ import annotations

import array
import subprocess

import pytest

import vramfit
from conftest import argmax, centred_rel_rms, read_reference, shared, tool

# tests/model/test_model.cpp's bar for the quantized synth files with an f32 KV cache, and its
# argmax rule: every position whose reference top-2 margin exceeds 0.3.
BOUND, MARGIN = 3e-2, 0.3
N_CTX, N_THREADS = 64, 2


def top2_margin(row) -> float:
    a, b = sorted(row, reverse=True)[:2]
    return a - b


def test_synth_q4_k_m_logits_equal_the_cpp_api_and_match_llama_cpp(tmp_path):
    model = str(shared("models/synth-Q4_K_M.gguf"))
    ref = read_reference("synth-Q4_K_M")
    with vramfit.Llama(model, device="cpu", n_ctx=N_CTX, n_batch=N_CTX, n_threads=N_THREADS, kv_type="f32") as llm:
        assert llm.tokenize(b"Once upon a time, there was a little") == ref.tokens[:ref.n_prompt]
        llm.eval(ref.tokens, all_logits=True)
        rows = [llm.get_logits(i) for i in range(len(ref.tokens))]
        assert llm.get_logits(-1) == rows[-1]

    # The same batch through the C++ API (tests/python/dump_logits.cpp): the same bits.
    out = tmp_path / "cpp.logits"
    subprocess.run([tool("VRAMFIT_DUMP_LOGITS"), model, str(N_CTX), str(N_THREADS), "f32", str(out)]
                   + [str(t) for t in ref.tokens], check=True)
    cpp = array.array("f", out.read_bytes())
    assert len(cpp) == len(ref.tokens) * ref.n_vocab
    binding = array.array("f")
    for row in rows:
        binding.extend(row)
    assert binding.tobytes() == cpp.tobytes()

    # And llama.cpp's reference, as the C++ test compares it.
    worst = max(centred_rel_rms(row, ref.row(i)) for i, row in enumerate(rows))
    assert worst <= BOUND, f"max centred rel RMS {worst:.3g} > {BOUND}"
    for i, row in enumerate(rows):
        if top2_margin(ref.row(i)) > MARGIN:
            assert argmax(row) == argmax(ref.row(i)), f"position {i}"


def test_logits_row_errors(stories):
    with pytest.raises(vramfit.InvalidArgumentError):
        stories.get_logits()  # nothing decoded yet
    stories.eval(stories.tokenize(b"Once"))
    assert stories.get_logits(0) == stories.get_logits(-1)
    with pytest.raises(vramfit.InvalidArgumentError, match=r"only 1 row\(s\) are kept"):
        stories.get_logits(1)  # without all_logits only the last token's row is kept
