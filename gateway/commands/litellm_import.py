"""`recloser import-litellm CONFIG.yaml`: an equivalent Recloser policy from a LiteLLM proxy config.

Carried over: `model_list` (several deployments per `model_name` become one route's targets, in
`order` and by `weight`), provider prefixes in `litellm_params.model`, `api_base`, keys given as
`os.environ/VAR` (become `${VAR}`), per-deployment prices and timeouts, and from `router_settings`
(or `litellm_settings`) fallbacks, retries, timeouts and cooldowns. Every other setting gets a
warning saying what became of it. A key written in the config itself is never copied: the policy
reads it from an environment variable instead, and a warning names the variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from gateway.policy.schema import KINDS

# The Azure OpenAI api-version a deployment gets when the LiteLLM config names none (the latest GA).
AZURE_API_VERSION = "2024-10-21"
# LiteLLM prefixes that speak the OpenAI wire protocol: Recloser's fast path (`kind: openai`).
OPENAI_WIRE = {"openai", "text-completion-openai", "hosted_vllm", "vllm", "ollama_chat", "lm_studio",
               "openai_like", "custom_openai", "llamafile"}
DEFAULT_BASES = {"openai": "https://api.openai.com/v1"}
ENV_KEY = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")
# Settings that have an equivalent, handled below; anything else in these sections gets a warning.
ROUTER_KNOWN = {"fallbacks", "num_retries", "timeout", "cooldown_time", "allowed_fails", "routing_strategy",
                "context_window_fallbacks", "content_policy_fallbacks", "retry_after", "stream_timeout"}
PARAMS_KNOWN = {"model", "api_base", "api_key", "timeout", "stream_timeout", "weight", "order", "max_retries",
                "input_cost_per_token", "output_cost_per_token", "api_version", "rpm", "tpm"}


@dataclass
class Imported:
    policy: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _name(text: str) -> str:
    """A policy name from a free-form one (LiteLLM allows spaces and more)."""
    cleaned = re.sub(r"[^A-Za-z0-9._:/@+-]", "-", text).strip("-._:/@+")
    return cleaned or "model"


def _split(model: str) -> tuple[str, str]:
    """`anthropic/claude-3-5-haiku` → (anthropic, claude-3-5-haiku); no prefix means OpenAI, as in LiteLLM."""
    if "/" in model:
        prefix, rest = model.split("/", 1)
        return prefix, rest
    return "openai", model


class _Importer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []
        self.providers: dict[str, dict[str, Any]] = {}
        self.identity: dict[tuple[str, str, str], str] = {}   # (kind, base, key ref) → provider name

    def warn(self, where: str, text: str) -> None:
        self.warnings.append(f"{self.source}: {where}: {text}")

    def key_ref(self, where: str, value: Any, provider_hint: str) -> str | None:
        if value is None:
            return None
        m = ENV_KEY.match(str(value))
        if m:
            return "${" + m.group(1) + "}"
        var = re.sub(r"[^A-Z0-9]", "_", provider_hint.upper()) + "_API_KEY"
        self.warn(where, f"a key written in the config is not copied; the policy reads ${{{var}}}: set that variable")
        return "${" + var + "}"

    def provider_for(self, where: str, prefix: str, params: Mapping[str, Any]) -> str | None:
        base = params.get("api_base")
        if prefix in OPENAI_WIRE:
            kind = "openai"
            base = base or DEFAULT_BASES.get(prefix)
            if base is None:
                self.warn(where, f"'{prefix}/' needs an api_base for Recloser's OpenAI wire; deployment skipped")
                return None
        elif prefix in KINDS and prefix != "sim":
            kind = prefix
        else:
            self.warn(where, f"provider prefix '{prefix}/' has no Recloser kind; deployment skipped")
            return None
        key = self.key_ref(where + ".api_key", params.get("api_key"), prefix) if "api_key" in params else None
        identity = (kind, str(base or ""), key or "")
        name = self.identity.get(identity)
        if name is None:
            name = prefix if prefix not in self.providers else f"{prefix}-{len(self.providers) + 1}"
            provider: dict[str, Any] = {"kind": kind}
            if base:
                provider["base_url"] = str(base).rstrip("/")
            if key:
                provider["api_key"] = key
            if kind == "azure":   # Recloser calls Azure itself and needs the api-version litellm defaults
                provider["api_version"] = str(params.get("api_version") or AZURE_API_VERSION)
                if "api_version" not in params:
                    self.warn(where, f"no api_version for azure; the policy uses {AZURE_API_VERSION}")
            self.providers[name] = provider
            self.identity[identity] = name
        return name


def import_config(config: Mapping[str, Any], source: str) -> Imported:
    """The policy equivalent to a parsed LiteLLM proxy config, and what could not be carried over."""
    im = _Importer(source)
    routes: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(config.get("model_list") or []):
        where = f"model_list[{i}]"
        params = entry.get("litellm_params") or {}
        if "model" not in params or "model_name" not in entry:
            im.warn(where, "no model_name or litellm_params.model; skipped")
            continue
        prefix, model = _split(str(params["model"]))
        provider = im.provider_for(where + ".litellm_params", prefix, params)
        if provider is None:
            continue
        target: dict[str, Any] = {"provider": provider, "model": model}
        if params.get("weight"):
            target["weight"] = max(1, min(1000, int(params["weight"])))
        # Deployments of one model_name share the traffic (LiteLLM's default); `order` ranks them.
        target["priority"] = max(0, min(1000, int(params.get("order") or 0)))
        facts: dict[str, Any] = {}
        for ours, theirs in (("input_usd_per_mtok", "input_cost_per_token"), ("output_usd_per_mtok", "output_cost_per_token")):
            cost = params.get(theirs, (entry.get("model_info") or {}).get(theirs))
            if cost is not None:
                facts[ours] = round(float(cost) * 1_000_000, 6)
        if facts:
            im.providers[provider].setdefault("models", {})[model] = facts
        if params.get("timeout"):
            im.providers[provider].setdefault("timeouts", {})["total_s"] = float(params["timeout"])
        if params.get("stream_timeout"):
            im.providers[provider].setdefault("timeouts", {})["first_token_s"] = float(params["stream_timeout"])
        for key in ("rpm", "tpm"):
            if key in params:
                im.warn(f"{where}.litellm_params.{key}", "per-deployment rate limits are not carried over")
        if "max_retries" in params:
            im.warn(f"{where}.litellm_params.max_retries", "retries are set per route in Recloser (routes.<r>.retry)")
        for key in sorted(set(params) - PARAMS_KNOWN):
            im.warn(f"{where}.litellm_params.{key}", "not carried over")
        route = routes.setdefault(_name(str(entry["model_name"])), {"targets": []})
        if any(t["provider"] == target["provider"] and t["model"] == target["model"] for t in route["targets"]):
            im.warn(where, f"{provider}/{model} is listed twice for {entry['model_name']}; kept once")
            continue
        route["targets"].append(target)

    router = dict(config.get("litellm_settings") or {})
    router.update(config.get("router_settings") or {})
    section = "router_settings"
    for group in router.get("fallbacks") or []:
        for primary, fallbacks in dict(group).items():
            into = routes.get(_name(str(primary)))
            if into is None:
                im.warn(f"{section}.fallbacks", f"'{primary}' has no deployment carried over; its fallbacks are skipped")
                continue
            base = 1 + max((t["priority"] for t in into["targets"]), default=0)
            for n, fallback in enumerate(fallbacks or []):
                source_route = routes.get(_name(str(fallback)))
                if source_route is None:
                    im.warn(f"{section}.fallbacks", f"fallback '{fallback}' has no deployment carried over; skipped")
                    continue
                for t in source_route["targets"]:
                    if any(t["provider"] == u["provider"] and t["model"] == u["model"] for u in into["targets"]):
                        continue
                    into["targets"].append({"provider": t["provider"], "model": t["model"],
                                             "priority": min(1000, base + n)})
    for route in routes.values():
        if len(route["targets"]) == 1:
            del route["targets"][0]["priority"]
    if router.get("num_retries") is not None:
        attempts = max(1, min(10, int(router["num_retries"]) + 1))
        for route in routes.values():
            route["retry"] = {"attempts": attempts}
    if router.get("timeout"):
        for route in routes.values():
            route["timeout_s"] = float(router["timeout"])
    if router.get("stream_timeout"):
        for settings in im.providers.values():
            settings.setdefault("timeouts", {}).setdefault("first_token_s", float(router["stream_timeout"]))
    breaker: dict[str, Any] = {}
    if router.get("cooldown_time"):
        breaker["base_ejection_s"] = float(router["cooldown_time"])
    if router.get("allowed_fails"):
        breaker["consecutive_failures"] = max(1, min(1000, int(router["allowed_fails"])))
    strategy = router.get("routing_strategy")
    if strategy and strategy not in ("simple-shuffle", "latency-based-routing"):
        im.warn(f"{section}.routing_strategy", f"'{strategy}' is not carried over: Recloser balances targets of "
                "equal priority by weight and prefers the faster of two")
    for key in ("context_window_fallbacks", "content_policy_fallbacks"):
        if router.get(key):
            im.warn(f"{section}.{key}", "not carried over: Recloser fails over on a context-window refusal to any "
                    "later target with a larger window; a content-policy failover needs the route's own setting")
    if router.get("retry_after"):
        im.warn(f"{section}.retry_after", "not carried over: Recloser honours the upstream's Retry-After itself")
    for key in sorted(set(config.get("router_settings") or {}) - ROUTER_KNOWN):
        im.warn(f"router_settings.{key}", "not carried over")
    for key in sorted(set(config.get("litellm_settings") or {}) - ROUTER_KNOWN):
        im.warn(f"litellm_settings.{key}", "not carried over")
    for key in sorted(config.get("general_settings") or {}):
        hint = " (clients need auth.keys: sha256 digests of their keys)" if key == "master_key" else ""
        im.warn(f"general_settings.{key}", "not carried over" + hint)
    for key in sorted(set(config) - {"model_list", "router_settings", "litellm_settings", "general_settings"}):
        im.warn(key, "not carried over")

    empty = [name for name, route in routes.items() if not route["targets"]]
    for name in empty:
        im.warn(f"model_name {name}", "no deployment could be carried over; route left out")
        del routes[name]
    policy: dict[str, Any] = {"version": 1, "providers": im.providers, "routes": routes}
    if breaker:
        policy["breaker"] = breaker
    return Imported(policy, im.warnings)


def render(imported: Imported, source: str) -> str:
    header = (f"# Imported from the LiteLLM proxy config {source} by `recloser import-litellm`.\n"
              "# Check it with `recloser check`; the warnings printed with it list what was not carried over.\n")
    return header + yaml.safe_dump(imported.policy, sort_keys=False, default_flow_style=None, width=120)


def load_config(text: str) -> Mapping[str, Any]:
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("a LiteLLM config is a mapping with a model_list")
    return data
