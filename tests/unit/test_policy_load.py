"""Policy files: strict validation that points at FILE:LINE, ${VAR} expansion, and secrets kept out of sight."""

from __future__ import annotations

import textwrap

import pytest

from gateway.policy.load import PolicyError, parse_policy

BASE = """
version: 1
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
  local:
    kind: openai
    base_url: http://gpu-box:8000/v1
routes:
  chat:
    targets:
      - {provider: openai, model: gpt-4o-mini}
      - {provider: local, model: llama}
"""
ENV = {"OPENAI_API_KEY": "sk-very-secret"}


def refuse(text: str, env: dict[str, str] | None = None) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(textwrap.dedent(text).lstrip("\n"), "p.yaml", ENV if env is None else env)
    return info.value


def test_a_valid_policy_loads_with_its_key_expanded() -> None:
    loaded = parse_policy(textwrap.dedent(BASE).lstrip("\n"), "p.yaml", ENV)
    key = loaded.document.providers["openai"].api_key
    assert key is not None and key.get_secret_value() == "sk-very-secret"


def test_the_key_never_shows_in_repr() -> None:
    loaded = parse_policy(textwrap.dedent(BASE).lstrip("\n"), "p.yaml", ENV)
    assert "sk-very-secret" not in repr(loaded) and "sk-very-secret" not in str(loaded.document)


def test_an_unknown_key_is_refused_at_its_line() -> None:
    err = refuse(BASE.replace("{provider: local, model: llama}", "{provider: local, model: llama, wieght: 2}"))
    assert str(err) == "p.yaml:14: routes.chat.targets[1]: unknown key 'wieght'"


def test_a_wrong_type_is_refused_at_its_line() -> None:
    err = refuse(BASE.replace("    base_url: http://gpu-box:8000/v1", "    base_url: http://gpu-box:8000/v1\n"
                                                                    "    timeouts: {connect_s: soon}"))
    assert err.line == 10 and "providers.local.timeouts.connect_s" in err.reason


def test_a_target_naming_an_unknown_provider_is_refused() -> None:
    err = refuse(BASE.replace("{provider: local,", "{provider: locall,"))
    assert str(err).startswith("p.yaml:14: routes.chat.targets[1].provider: unknown provider 'locall'")


def test_a_duplicate_route_is_refused_at_the_second_one() -> None:
    err = refuse(BASE + "  chat:\n    targets: [{provider: local, model: x}]\n")
    assert (err.line, err.reason) == (15, "duplicate key 'chat'")


def test_a_missing_variable_is_an_error_naming_it() -> None:
    err = refuse(BASE, env={})
    assert err.line == 6 and "OPENAI_API_KEY is not set" in err.reason


def test_a_default_applies_when_the_variable_is_missing() -> None:
    text = BASE.replace("${OPENAI_API_KEY}", "${OPENAI_API_KEY:-sk-fallback}")
    loaded = parse_policy(textwrap.dedent(text).lstrip("\n"), "p.yaml", {})
    assert loaded.document.providers["openai"].api_key.get_secret_value() == "sk-fallback"  # type: ignore[union-attr]


def test_variables_expand_inside_longer_strings() -> None:
    text = BASE.replace("http://gpu-box:8000/v1", "http://${GPU_HOST:-gpu-box}:${GPU_PORT}/v1")
    loaded = parse_policy(textwrap.dedent(text).lstrip("\n"), "p.yaml", {**ENV, "GPU_PORT": "9000"})
    assert loaded.document.providers["local"].base_url == "http://gpu-box:9000/v1"


def test_errors_never_echo_the_secret() -> None:
    err = refuse(BASE.replace("api_key: ${OPENAI_API_KEY}", "api_key: [${OPENAI_API_KEY}]"))
    assert "sk-very-secret" not in str(err)


def test_an_unknown_kind_is_refused() -> None:
    err = refuse(BASE.replace("kind: openai\n    base_url: https://api", "kind: opneai\n    base_url: https://api"))
    assert err.line == 4 and "unknown kind 'opneai'" in err.reason


def test_an_openai_provider_needs_a_base_url() -> None:
    err = refuse(BASE.replace("    base_url: http://gpu-box:8000/v1\n", ""))
    assert "needs a base_url" in err.reason


def test_malformed_yaml_is_refused_with_its_line() -> None:
    err = refuse(BASE + "  broken: [unclosed\n")
    assert err.line == 15 and "not valid YAML" in err.reason


def test_an_unsupported_version_is_refused() -> None:
    err = refuse(BASE.replace("version: 1", "version: 2"))
    assert err.line == 1 and "version" in err.reason


def test_a_missing_section_is_named() -> None:
    err = refuse("version: 1\nproviders: {a: {kind: sim}}\n")
    assert "missing required key 'routes'" in err.reason


def test_litellm_kinds_are_all_known_to_litellm() -> None:
    from gateway.policy.schema import LITELLM_KINDS
    from gateway.providers.litellm_bridge import import_litellm

    litellm = import_litellm()
    known = {str(p.value) if hasattr(p, "value") else str(p) for p in litellm.provider_list}
    assert LITELLM_KINDS <= known, LITELLM_KINDS - known


def test_shared_state_and_rate_limits_load() -> None:
    loaded = parse_policy(textwrap.dedent(BASE).lstrip("\n") + textwrap.dedent("""
        state: {redis_url: "redis://:pw@cache:6379/0", timeout_ms: 30}
        rate_limits:
          - {name: search-rpm, team: search, rpm: 600, tpm: 100000}
        """), "p.yaml", ENV)
    doc = loaded.document
    assert doc.state is not None and doc.state.timeout_ms == 30 and doc.state.sync_ms == 250
    assert doc.rate_limits[0].rpm == 600 and doc.rate_limits[0].tpm == 100000


def test_a_state_url_that_is_not_redis_is_refused_at_its_line_without_showing_it() -> None:
    err = refuse(BASE + 'state: {redis_url: "http://:hunter2@cache:6379"}\n')
    assert str(err).startswith("p.yaml:15: state.redis_url:") and "redis://" in str(err)
    assert "hunter2" not in str(err)


def test_a_rate_limit_without_a_limit_is_refused_at_its_line() -> None:
    err = refuse(BASE + "rate_limits:\n  - {name: x, team: search}\n")
    assert str(err).startswith("p.yaml:16: rate_limits[0]:") and "rpm, tpm or both" in str(err)


def test_a_rate_limit_for_an_unknown_key_is_refused() -> None:
    auth = "auth:\n  keys:\n    - {id: k1, sha256: " + "a" * 64 + ", team: t, app: a}\n"
    err = refuse(BASE + auth + "rate_limits:\n  - {name: x, key: nope, rpm: 5}\n")
    assert "rate_limits[0].key: unknown key id 'nope'" in str(err)


def test_two_rate_limits_of_one_name_are_refused() -> None:
    err = refuse(BASE + "rate_limits:\n  - {name: x, team: a, rpm: 5}\n  - {name: x, team: b, rpm: 5}\n")
    assert "duplicate rate limit name 'x'" in str(err)


def test_an_azure_provider_without_an_api_version_is_refused_at_its_line() -> None:
    err = refuse(BASE.replace("    kind: openai\n    base_url: http://gpu-box:8000/v1",
                              "    kind: azure\n    base_url: https://res.openai.azure.com"))
    assert str(err).startswith("p.yaml:7: providers.local: kind 'azure' needs base_url")


def test_an_anthropic_base_url_ending_in_v1_is_refused() -> None:
    err = refuse(BASE.replace("    kind: openai\n    base_url: http://gpu-box:8000/v1",
                              "    kind: anthropic\n    base_url: https://api.anthropic.com/v1"))
    assert err.line == 9 and "without /v1" in err.reason


def test_native_provider_settings_load() -> None:
    text = BASE.replace("    kind: openai\n    base_url: http://gpu-box:8000/v1",
                        "    kind: anthropic\n    api_version: '2023-06-01'\n"
                        "    anthropic_beta: [prompt-caching-2024-07-31]\n"
                        "    models: {llama: {max_output_tokens: 8192, cache_write_usd_per_mtok: 3.75}}")
    local = parse_policy(textwrap.dedent(text).lstrip("\n"), "p.yaml", ENV).document.providers["local"]
    assert (local.api_version, local.anthropic_beta) == ("2023-06-01", ["prompt-caching-2024-07-31"])
    assert local.models["llama"].max_output_tokens == 8192


def test_a_negative_hold_is_refused_at_its_line() -> None:
    err = refuse(BASE.replace("  chat:\n", "  chat:\n    hold_s: -5\n"))
    assert str(err) == "p.yaml:12: routes.chat.hold_s: Input should be greater than or equal to 0"


def test_a_streams_loop_lag_wait_defaults_to_five_seconds_and_past_ten_is_refused_at_its_line() -> None:
    err = refuse(BASE + "limits: {stream_loop_lag_wait_ms: 60000}\n")
    assert err.line == 15 and "limits.stream_loop_lag_wait_ms" in err.reason and "10000" in err.reason
    loaded = parse_policy(textwrap.dedent(BASE).lstrip("\n"), "p.yaml", ENV)
    assert loaded.document.limits.stream_loop_lag_wait_ms == 5000


def test_a_loop_lag_wait_past_ten_seconds_is_refused_at_its_line() -> None:
    err = refuse(BASE + "limits: {loop_lag_wait_ms: 60000}\n")
    assert err.line == 15 and "limits.loop_lag_wait_ms" in err.reason and "10000" in err.reason
    loaded = parse_policy(textwrap.dedent(BASE + "limits: {loop_lag_wait_ms: 0}\n").lstrip("\n"), "p.yaml", ENV)
    assert loaded.document.limits.loop_lag_wait_ms == 0


def test_a_negative_collector_freeze_level_is_refused_at_its_line() -> None:
    err = refuse(BASE + "limits: {collector_freeze_in_flight: -1}\n")
    assert err.line == 15 and "limits.collector_freeze_in_flight" in err.reason
    loaded = parse_policy(textwrap.dedent(BASE + "limits: {collector_freeze_in_flight: 0}\n").lstrip("\n"), "p.yaml", ENV)
    assert loaded.document.limits.collector_freeze_in_flight == 0
