"""Errors raise the vramfit.Error subclass of their status, with the library's message."""
from __future__ import annotations

import ctypes

import pytest

import vramfit
from vramfit import _native
from conftest import PROMPT, shared


def test_missing_file(tmp_path):
    missing = tmp_path / "missing.gguf"
    with pytest.raises(vramfit.IoError) as e:
        vramfit.Llama(str(missing), device="cpu")
    assert str(missing) in str(e.value) and e.value.code == 2 and e.value.status == "io"
    assert isinstance(e.value, vramfit.Error) and isinstance(e.value, OSError)


def test_bad_budget_string(stories_path):
    with pytest.raises(vramfit.InvalidArgumentError, match="vramfit_parse_size: '11.5 gigs' is not a size") as e:
        vramfit.Llama(stories_path, vram_budget="11.5 gigs")
    assert e.value.code == 1 and isinstance(e.value, ValueError)
    assert vramfit.parse_size("11.5GiB") == 12348030976 and vramfit.parse_size("800MB") == 800_000_000
    with pytest.raises(TypeError):
        vramfit.parse_size(1.5)


def test_unsupported_and_corrupt_files():
    with pytest.raises(vramfit.UnsupportedError, match="GGUF v1 is not supported") as e:
        vramfit.Llama(str(shared("models/edge-gguf-v1-stories260K.gguf")), device="cpu")
    assert e.value.code == 4
    with pytest.raises(vramfit.Error, match="ffn_down") as e:
        vramfit.Llama(str(shared("models/edge-q8_0-ragged-rows.gguf")), device="cpu")
    assert type(e.value) in (vramfit.FormatError, vramfit.UnsupportedError)


def test_context_full(stories_path):
    with vramfit.Llama(stories_path, device="cpu", n_ctx=8) as llm:
        with pytest.raises(vramfit.ContextFullError, match="10 tokens do not fit: 0 of n_ctx = 8") as e:
            llm(PROMPT, max_tokens=4)
        assert e.value.code == 7
        # Nothing changed: the context is still usable.
        assert llm("Once", max_tokens=2, temperature=0)["usage"]["completion_tokens"] == 2


def test_budget_beyond_the_simulated_device(stories_path):
    with pytest.raises(vramfit.InvalidArgumentError):
        vramfit.Llama(stories_path, device="sim:1MiB", vram_budget="2MiB", n_ctx=64)


def test_closed_objects_refuse_use(stories_path):
    llm = vramfit.Llama(stories_path, device="cpu", n_ctx=64)
    llm.close()
    llm.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        llm("Once")


def test_progress_callback_reports_and_cancels(stories_path):
    seen = []
    with vramfit.Llama(stories_path, device="sim:64MiB", vram_budget="4MiB", n_ctx=64,
                       progress_callback=seen.append) as llm:
        assert llm.memory()["devices"][1]["budget"] == 4 << 20
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 2

    with pytest.raises(vramfit.CancelledError) as e:
        vramfit.Llama(stories_path, device="sim:64MiB", vram_budget="4MiB", n_ctx=64,
                      progress_callback=lambda fraction: fraction < 0.5)
    assert e.value.code == 11

    def boom(fraction):
        raise KeyError("from the callback")
    with pytest.raises(KeyError, match="from the callback"):  # the callback's own exception, after the load stops
        vramfit.Llama(stories_path, device="cpu", progress_callback=boom)


def test_memory_report_by_device_and_category(stories_path):
    with vramfit.Llama(stories_path, device="sim:64MiB", vram_budget="4MiB", n_ctx=64, n_gpu_layers=3) as llm:
        report = llm.memory()
    host, device = report["devices"]
    assert host["device"] == "cpu" and device["device"].startswith("sim")
    for d in (host, device):
        assert d["total"] == d["weights"] + d["kv"] + d["scratch"] + d["staging"] + d["overhead"]
    assert report["total"] == host["total"] + device["total"]
    assert 0 < device["total"] <= device["budget"] == 4 << 20
    assert device["weights"] > 0 and device["kv"] > 0 and host["weights"] > 0


def test_struct_layouts_read_the_documented_defaults():
    """The ctypes structs mirror the header: the library's defaults land in the fields named for them."""
    lib = _native.lib()
    mp = _native.init_params(lib.vramfit_model_params_init, _native.ModelParams)
    assert mp.struct_size == ctypes.sizeof(_native.ModelParams) == 56
    assert (mp.device, mp.n_ctx, mp.n_batch, mp.kv_type, mp.reserved2) == (None, 0, 512, 0, 0)
    policy = _native.init_params(lib.vramfit_offload_policy_init, _native.OffloadPolicy)
    assert ctypes.sizeof(_native.OffloadPolicy) == 64
    assert (policy.strategy, policy.vram_budget_bytes, policy.reserve_bytes, policy.n_gpu_layers, policy.n_rules,
            policy.cpu_moe, policy.n_cpu_moe) == (0, 0, 512 << 20, -1, 0, False, 0)
    cp = _native.init_params(lib.vramfit_context_params_init, _native.ContextParams)
    assert ctypes.sizeof(_native.ContextParams) == 20 and (cp.n_ctx, cp.n_batch, cp.n_threads) == (0, 512, 0)
    sp = _native.init_params(lib.vramfit_sampler_params_init, _native.SamplerParams)
    assert ctypes.sizeof(_native.SamplerParams) == 48
    assert (sp.top_k, sp.penalty_last_n, sp.seed) == (40, 64, 0xFFFFFFFF)
    assert abs(sp.temperature - 0.8) < 1e-6 and abs(sp.top_p - 0.95) < 1e-6 and abs(sp.min_p - 0.05) < 1e-6
    chat = _native.init_params(lib.vramfit_chat_params_init, _native.ChatParams)
    assert ctypes.sizeof(_native.ChatParams) == 48 and chat.add_generation_prompt == 1 and chat.chat_template is None
