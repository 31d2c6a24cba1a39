"""`recloser canary`: the suite once against each deployment, printed as a table ops can compare."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import write_policy
from tests.integration.test_cli import recloser

POLICY = """
version: 1
providers:
  smart: {kind: sim, models: {m1: {input_usd_per_mtok: 2.5, output_usd_per_mtok: 10}}}
  dumb: {kind: sim, sim: {dumb: true}, models: {m2: {input_usd_per_mtok: 0.1, output_usd_per_mtok: 0.2}}}
routes:
  chat:
    targets:
      - {provider: smart, model: m1}
      - {provider: dumb, model: m2, tier: 2}
"""


def row(output: str, deployment: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(deployment + " "))


def test_canary_against_two_simulators_one_dumb_prints_the_difference(tmp_path: Path) -> None:
    result = recloser("canary", "--policy", str(write_policy(tmp_path, POLICY)))
    assert result.returncode == 0, result.stderr
    smart, dumb = row(result.stdout, "smart/m1"), row(result.stdout, "dumb/m2")
    assert re.search(r"\s11/11\s+100%\s", smart) and smart.rstrip().endswith(" -")
    assert re.search(r"\s0/11\s+0%\s", dumb)
    assert "add (fail: The answer is 43.)" in dumb and "… 7 more" in dumb
    assert re.search(r"\s0\.000\d+\s", smart)   # the cost of the run, from the policy's prices


def test_canary_can_run_against_one_deployment(tmp_path: Path) -> None:
    path = str(write_policy(tmp_path, POLICY))
    result = recloser("canary", "--policy", path, "--deployment", "dumb/m2")
    assert result.returncode == 0 and "dumb/m2" in result.stdout and "smart/m1" not in result.stdout
    unknown = recloser("canary", "--policy", path, "--deployment", "nope/x")
    assert unknown.returncode == 2 and "known: smart/m1, dumb/m2" in unknown.stdout
