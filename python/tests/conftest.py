"""Shared fixtures: the test data (../shared or $VRAMFIT_TEST_DATA), the reference files, models.

Tests that need the data skip when it is missing on a user's machine and fail under CI=true, as the
C++ suites do. ctest runs this suite with VRAMFIT_LIBRARY pointing at the built library.
"""
from __future__ import annotations

import array
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

import vramfit

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("VRAMFIT_TEST_DATA") or ROOT.parent / "shared")
PROMPT = "Once upon a time, there was a little"  # the prompt of every reference logits file


def shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        message = f"test data not found: {path} (set VRAMFIT_TEST_DATA)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def tool(env: str) -> str:
    """A helper program ctest passes in (the CLI, dump_logits); skipped outside ctest."""
    path = os.environ.get(env)
    if not path:
        if os.environ.get("CI") == "true":
            pytest.fail(f"${env} is not set: run this suite through ctest")
        pytest.skip(f"${env} is not set: run this suite through ctest (ctest -R test_python)")
    return path


@dataclass
class Reference:
    """A reference/logits/*.logits.bin file (VFRL v1): tokens and llama.cpp's logits per position."""
    n_vocab: int
    n_prompt: int
    tokens: List[int]
    logits: "array.array[float]"

    def row(self, i: int):
        return self.logits[i * self.n_vocab:(i + 1) * self.n_vocab]


def read_reference(name: str) -> Reference:
    data = shared(f"reference/logits/{name}.logits.bin").read_bytes()
    magic, version, n_vocab, n_prompt, n_total = struct.unpack_from("<4sIIII", data)
    assert magic == b"VFRL" and version == 1
    tokens = list(struct.unpack_from(f"<{n_total}i", data, 20))
    logits = array.array("f", data[20 + 4 * n_total:])
    assert len(logits) == n_total * n_vocab
    return Reference(n_vocab, n_prompt, tokens, logits)


def centred_rel_rms(a, b) -> float:
    """Mean-centred relative RMS of a - b (as the C++ tests and the shared README compare logits)."""
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    diff = norm = 0.0
    for x, y in zip(a, b):
        x, y = x - mean_a, y - mean_b
        diff += (x - y) ** 2
        norm += y * y
    return (diff / norm) ** 0.5


def argmax(row) -> int:
    return max(range(len(row)), key=row.__getitem__)


@pytest.fixture(scope="session")
def stories_path() -> str:
    return str(shared("models/stories260K.gguf"))


@pytest.fixture
def stories(stories_path):
    """stories260K on the CPU with an f32 KV cache on one thread, as its reference was made."""
    with vramfit.Llama(stories_path, device="cpu", n_ctx=64, n_threads=1, kv_type="f32") as llm:
        yield llm
