"""examples/python/example.py runs as a user would run it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python" / "example.py"


def test_example_plans_completes_chats_and_reports_memory(stories_path):
    run = subprocess.run([sys.executable, str(EXAMPLE), stories_path, "--device", "cpu", "--n-ctx", "256"],
                         capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    lines = run.stdout.splitlines()  # "\r" between progress reports splits too
    assert lines[0].startswith("plan: ") and "of 5 layers" in lines[0]
    assert "loading 100%" in lines
    completion = next(line for line in lines if line.startswith("completion: "))
    assert len(completion) > len("completion: ") + 20
    assert any(line.startswith("chat: ") for line in lines)
    assert any(line.startswith("memory on cpu: weights 1.1 MiB") for line in lines)
