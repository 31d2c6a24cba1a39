"""`recloser import-litellm`: a LiteLLM proxy config becomes an equivalent policy that passes check,
and every setting that cannot be carried over is named in a warning."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.commands.litellm_import import import_config, load_config, render
from gateway.policy.load import parse_policy

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "litellm"
ENV = {"OPENAI_API_KEY": "sk-o", "AZURE_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-an"}


def imported(name: str) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    path = SAMPLES / name
    result = import_config(load_config(path.read_text()), str(path))
    return result.policy, result.warnings


def test_deployments_of_one_model_name_share_a_route_and_fallbacks_follow_them() -> None:
    policy, warnings = imported("simple.yaml")
    assert warnings == []
    targets = policy["routes"]["gpt-4o-mini"]["targets"]
    assert [(t["provider"], t["model"], t.get("weight"), t["priority"]) for t in targets] == [
        ("openai", "gpt-4o-mini", 3, 0), ("azure", "gpt-4o-mini-eu", 1, 0),
        ("anthropic", "claude-haiku-4-5", None, 1), ("hosted_vllm", "meta-llama/Llama-3.1-8B-Instruct", None, 2)]


def test_prefixes_bases_and_environment_keys_become_providers() -> None:
    providers = imported("simple.yaml")[0]["providers"]
    assert providers["openai"] == {"kind": "openai", "base_url": "https://api.openai.com/v1", "api_key": "${OPENAI_API_KEY}"}
    assert providers["azure"]["kind"] == "azure" and providers["azure"]["api_key"] == "${AZURE_API_KEY}"
    assert providers["azure"]["api_version"] == "2024-10-21"
    assert providers["hosted_vllm"]["kind"] == "openai"
    assert providers["hosted_vllm"]["base_url"] == "http://vllm.internal:8000/v1"
    assert providers["hosted_vllm"]["models"]["meta-llama/Llama-3.1-8B-Instruct"] == {
        "input_usd_per_mtok": 0.1, "output_usd_per_mtok": 0.2}
    assert providers["anthropic"]["timeouts"] == {"total_s": 60.0}


def test_retries_timeouts_and_cooldowns_carry_over() -> None:
    policy = imported("simple.yaml")[0]
    assert policy["routes"]["claude"]["retry"] == {"attempts": 3}
    assert policy["routes"]["claude"]["timeout_s"] == 120.0
    assert policy["breaker"] == {"base_ejection_s": 30.0, "consecutive_failures": 3}


def test_the_output_passes_check() -> None:
    for sample in ("simple.yaml", "unsupported.yaml"):
        result = import_config(load_config((SAMPLES / sample).read_text()), sample)
        loaded = parse_policy(render(result, sample), "imported.yaml", ENV)
        assert loaded.document.routes


def test_every_setting_that_cannot_be_carried_over_is_warned_about() -> None:
    _, warnings = imported("unsupported.yaml")
    text = "\n".join(warnings)
    for where in ("model_list[0].litellm_params.rpm", "model_list[0].litellm_params.tpm",
                  "model_list[2].litellm_params: provider prefix 'replicate/'",
                  "model_list[3].litellm_params: 'ollama_chat/' needs an api_base", "router_settings.routing_strategy",
                  "router_settings.context_window_fallbacks", "router_settings.redis_host",
                  "litellm_settings.success_callback", "litellm_settings.cache", "general_settings.master_key",
                  "general_settings.database_url"):
        assert where in text, where


def test_a_key_written_in_the_config_never_reaches_the_policy_or_the_warnings() -> None:
    policy, warnings = imported("unsupported.yaml")
    dumped = yaml.safe_dump(policy) + "\n".join(warnings)
    assert "sk-literal-key-in-the-file" not in dumped
    assert "sk-proxy-master-key" not in dumped and "postgresql://" not in dumped
    assert policy["providers"]["openai"]["api_key"] == "${OPENAI_API_KEY}"
    assert any("the policy reads ${OPENAI_API_KEY}" in w for w in warnings)


def test_an_azure_api_version_is_carried_over() -> None:
    policy, warnings = imported("unsupported.yaml")
    assert policy["providers"]["azure"]["api_version"] == "2024-06-01"
    assert not any("api_version" in w for w in warnings)
