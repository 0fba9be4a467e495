"""`pip install ./python` works offline with Debian's Python, and the installed package finds the library."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]


def test_pip_install_offline_into_a_venv(tmp_path):
    try:
        import ensurepip  # noqa: F401  (Debian: python3-venv)
    except ImportError:
        pytest.skip("python3-venv is not installed")
    source = tmp_path / "src"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    # What the README says: no index, no build isolation (setuptools comes from the system).
    subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-index", "--quiet",
                    str(source)], check=True, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    library = os.environ.get("VRAMFIT_LIBRARY")
    if library:
        env["VRAMFIT_LIBRARY"] = library = os.path.abspath(library)
    run = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import vramfit; print(vramfit.__file__); print(vramfit.library_version())"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    installed, version = run.stdout.split()
    assert installed.startswith(str(venv)) and version.count(".") == 2

    # A library copied next to the installed package is found there without VRAMFIT_LIBRARY.
    if library:
        shutil.copy(library, Path(installed).parent / "libvramfit.so.1")
        env.pop("VRAMFIT_LIBRARY")
        env["LD_LIBRARY_PATH"] = ""
        run = subprocess.run([str(venv / "bin" / "python"), "-c", "import vramfit; print(vramfit.library_path())"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
        assert run.stdout.strip() == str(Path(installed).parent / "libvramfit.so.1")


def test_missing_library_is_a_clear_error(tmp_path):
    env = dict(os.environ, VRAMFIT_LIBRARY=str(tmp_path / "nowhere.so"))
    run = subprocess.run([sys.executable, "-c", "import vramfit\ntry:\n  vramfit.library_version()\n"
                          "except vramfit.LibraryNotFoundError as e:\n  print(e)"],
                         capture_output=True, text=True, env=env, check=True)
    assert "libvramfit.so not found; set VRAMFIT_LIBRARY" in run.stdout and "nowhere.so" in run.stdout
