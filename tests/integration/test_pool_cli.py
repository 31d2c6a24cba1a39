"""`recloser check` and `recloser simulate` on a policy with a pool, as an operator runs them."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import recloser

POLICY = """version: 1
providers:
  gpus:
    kind: openai
    endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]
    load: {spill: {queue: 4}}
    models: {llama: {gpu_hour_usd: 2, tokens_per_second: 1000}}
  frontier:
    kind: sim
    models: {small: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}}
  anthropic:
    kind: sim
    models: {haiku: {input_usd_per_mtok: 0.8, output_usd_per_mtok: 4}}
routes:
  chat:
    targets:
      - {provider: gpus, model: llama}
      - {provider: frontier, model: small}
      - {provider: anthropic, model: haiku}
"""


def test_check_warns_about_a_pool_whose_metrics_are_not_read(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(POLICY)
    result = recloser("check", str(path))
    assert result.returncode == 0, result.stderr
    assert f"warning: {path}:5: providers.gpus: a pool without `server`" in result.stdout
    assert f"{path}: ok (3 providers, 1 routes)" in result.stdout


def test_simulate_takes_one_endpoint_of_a_pool_down_and_refuses_one_the_pool_does_not_have(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(POLICY)
    result = recloser("simulate", "--policy", str(path), "--down", "gpus@10.0.0.2:8000")
    assert result.returncode == 0, result.stderr
    assert "then:  gpus/llama 100%" in result.stdout
    assert "order: gpus/llama (1 of 2 endpoints down) -> frontier/small -> anthropic/haiku" in result.stdout
    whole = recloser("simulate", "--policy", str(path), "--down", "gpus")
    assert "then:  frontier/small 100%" in whole.stdout and "skips: gpus/llama (down" in whole.stdout
    wrong = recloser("simulate", "--policy", str(path), "--down", "gpus@10.0.0.3:8000")
    assert wrong.returncode == 2 and "no provider gpus@10.0.0.3:8000" in wrong.stderr
