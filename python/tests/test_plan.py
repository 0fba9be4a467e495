"""vramfit.plan(): the same plan as `vramfit plan --json`, from the header alone."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

import vramfit
from conftest import shared, tool

# (CLI flags, plan() keyword arguments): the same request both ways.
REQUESTS = [
    ("header-only/llama2-70b-Q4_K_M.gguf", ["--vram-budget", "12GiB", "-c", "4096"],
     dict(vram_budget="12GiB", n_ctx=4096)),
    ("header-only/llama2-70b-Q4_K_M.gguf", ["--vram-budget", "11.5GiB", "--kv-type", "q8_0", "-ngl", "20"],
     dict(vram_budget="11.5GiB", n_ctx=4096, kv_type="q8_0", n_gpu_layers=20)),
    ("header-only/qwen3-30b-a3b-Q4_K_M.gguf", ["--vram-budget", "12GiB", "--cpu-moe"],
     dict(vram_budget=12 << 30, n_ctx=4096, cpu_moe=True)),
    ("header-only/mixtral-8x7b-Q4_K_M.gguf", ["--vram-budget", "10GB", "-c", "8192", "-ot", "ffn_.*_exps=cpu"],
     dict(vram_budget="10GB", n_ctx=8192, override_tensor=[("ffn_.*_exps", "cpu")])),
]


def without_sampled_memory(plan: dict) -> dict:
    """The plan less the host's available memory, which the OS reports anew at each call."""
    plan = json.loads(json.dumps(plan))
    plan["machine"].pop("host_available_bytes")
    plan["notes"] = [re.sub(r"only [0-9.]+ GiB is available", "only (sampled) is available", n) for n in plan["notes"]]
    return plan


@pytest.mark.parametrize("model, flags, kwargs", REQUESTS, ids=[f"{r[0].split('/')[-1]} {' '.join(r[1])}" for r in REQUESTS])
def test_plan_matches_the_cli_json(model, flags, kwargs):
    path = str(shared(f"models/{model}"))
    cli = subprocess.run([tool("VRAMFIT_CLI"), "plan", "-m", path, "--json"] + flags, check=True,
                         capture_output=True, text=True).stdout
    ours = vramfit.plan(path, **kwargs)
    assert ours["device_total_bytes"] <= ours["budget_bytes"] == vramfit.parse_size(kwargs["vram_budget"])
    assert without_sampled_memory(ours) == without_sampled_memory(json.loads(cli))


def test_plan_table_and_defaults():
    path = str(shared("models/header-only/llama2-70b-Q4_K_M.gguf"))
    table = vramfit.plan(path, vram_budget="12GiB", table=True)
    assert "budget 12.00 GiB (12884901888 bytes)" in table
    # n_ctx 0: the trained length, at most 4096 (what loading the model would plan).
    assert vramfit.plan(path, vram_budget="12GiB")["n_ctx"] == 4096


def test_plan_errors_carry_the_library_message():
    path = str(shared("models/header-only/llama2-70b-Q4_K_M.gguf"))
    with pytest.raises(vramfit.BudgetExceededError, match="the smallest budget that works is [0-9]+ bytes") as e:
        vramfit.plan(path, vram_budget="300MiB")
    assert e.value.code == 6 and e.value.status == "budget_exceeded"
    with pytest.raises(vramfit.InvalidArgumentError, match="'12XB' is not a size"):
        vramfit.plan(path, vram_budget="12XB")
    with pytest.raises(ValueError, match="strategy='quickest' is not one of fastest, layers, manual"):
        vramfit.plan(path, strategy="quickest")
    with pytest.raises(vramfit.IoError, match="no-such-model.gguf"):
        vramfit.plan("no-such-model.gguf")
