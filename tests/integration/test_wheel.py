"""A built wheel installed into a fresh virtualenv carries the default policy: `recloser demo` works anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    # The checkout must not leak in: no PYTHONPATH, no policy chosen by the environment.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RECLOSER_POLICY", "VIRTUAL_ENV")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(900)
def test_a_wheel_installed_in_a_fresh_virtualenv_runs_the_demo_from_an_empty_directory(tmp_path: Path) -> None:
    wheels, venv, empty = tmp_path / "wheels", tmp_path / "venv", tmp_path / "empty"
    empty.mkdir()
    built = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(wheels)], tmp_path, 300)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("recloser-*.whl")

    assert run([sys.executable, "-m", "venv", str(venv)], tmp_path, 120).returncode == 0
    installed = run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], tmp_path, 600)
    assert installed.returncode == 0, installed.stderr

    demo = run([str(venv / "bin" / "recloser"), "demo"], empty, 180)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "8 of 8 calls answered" in demo.stdout
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert f"policy {site / 'gateway' / 'policies' / 'default.yaml'}" in demo.stdout
