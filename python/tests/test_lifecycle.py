"""Native objects are freed deterministically: 10 000 create/free cycles keep RSS flat; logging."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import vramfit
from conftest import PROMPT

CYCLES, WARM_UP = 10_000, 1_000
# A leak of 110 bytes per cycle would pass this bound over the 9 000 cycles measured; a context's
# KV cache (32 tokens x 5 layers, several KiB) or a sampler left behind each cycle would not.
RSS_BOUND = 1 << 20


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_context_and_sampler_cycles_leak_nothing(stories_path):
    with vramfit.Model(stories_path, device="cpu") as model:
        for i in range(CYCLES):
            with vramfit.Context(model, n_ctx=32, n_threads=1) as ctx, vramfit.Sampler(temperature=0) as sampler:
                ctx.decode([model.bos()])
                sampler.accept(sampler.sample(ctx))
            if i == WARM_UP - 1:
                start = rss_bytes()
        grown = rss_bytes() - start
    assert grown < RSS_BOUND, f"RSS grew by {grown} bytes over {CYCLES - WARM_UP} cycles"


def test_llama_cycles_leak_nothing(stories_path):
    for i in range(CYCLES):
        with vramfit.Llama(stories_path, device="cpu", n_ctx=32, n_threads=1) as llm:
            llm("Once", max_tokens=1, temperature=0)
        if i == WARM_UP - 1:
            start = rss_bytes()
    grown = rss_bytes() - start
    assert grown < RSS_BOUND, f"RSS grew by {grown} bytes over {CYCLES - WARM_UP} cycles"


def test_garbage_collection_frees_without_close(stories_path):
    llm = vramfit.Llama(stories_path, device="cpu", n_ctx=32, n_threads=1)
    model, ctx = llm.model, llm.context
    del llm  # __del__ closes; the Python owners held here are closed with it
    assert model._ptr is None and ctx._ptr is None


def test_nothing_prints_unless_a_logger_is_attached(stories_path):
    """Loading logs (INFO: the model's shape; WARN without a GPU: offload ignored), but only to the
    "vramfit" logger: stderr stays empty until the application configures logging."""
    script = textwrap.dedent(f"""
        import io, logging, vramfit
        path = {stories_path!r}
        vramfit.Llama(path, vram_budget="1GiB", n_ctx=32)(\"Once\", max_tokens=2).get("id")
        stream = io.StringIO()
        logging.getLogger("vramfit").addHandler(logging.StreamHandler(stream))
        logging.getLogger("vramfit").setLevel(logging.INFO)
        vramfit.Llama(path, vram_budget="1GiB", n_ctx=32)
        print(stream.getvalue(), end="")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert "stories260K.gguf: llama, 5 layers" in run.stdout


def test_log_records_reach_python_logging(stories_path, caplog):
    with caplog.at_level("INFO", logger="vramfit"):
        with vramfit.Llama(stories_path, device="cpu", n_ctx=32) as llm:
            llm(PROMPT, max_tokens=1)
    records = [r for r in caplog.records if r.name == "vramfit"]
    assert any("5 layers" in r.getMessage() and r.levelname == "INFO" for r in records)
