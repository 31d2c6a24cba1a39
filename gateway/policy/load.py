"""Reading a policy file: YAML with line marks → schema validation → cross-reference checks.

Every refusal is a `PolicyError` that reads `FILE:LINE: where: reason`; nothing in it echoes a
value from the file, so a misplaced key never leaks into logs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from gateway.policy.schema import KINDS, LITELLM_KINDS, NATIVE_KINDS, PolicyDocument
from gateway.policy.yaml_marks import MarkedDocument, Path_, YamlError, load_marked


# A check of a valid policy that only warns, from a layer that knows more than the schema (prices):
# (source, document, marks) -> warnings reading `FILE:LINE: reason`.
PolicyCheck = Callable[[str, PolicyDocument, MarkedDocument], list[str]]


class PolicyError(Exception):
    """A policy file that cannot serve, with the place and the reason."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class ReloadResult:
    """What reading the policy file again came to."""

    result: Literal["ok", "unchanged", "error"]
    sha256: str                     # of the policy now serving
    message: str                    # with "error": FILE:LINE: reason
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedPolicy:
    document: PolicyDocument
    source: str
    warnings: tuple[str, ...] = field(default=())
    sha256: str = ""                # of the file's text, before ${ENV} expansion


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _reason(error: ErrorDetails) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        return f"unknown key '{loc[-1]}'"
    if kind == "missing":
        return f"missing required key '{loc[-1]}'"
    if kind == "literal_error" and loc == ("version",):
        return "unsupported policy version (this gateway reads version: 1)"
    return str(error["msg"])


def _schema_error(source: str, marked: MarkedDocument, exc: ValidationError) -> PolicyError:
    first = exc.errors()[0]
    # Pydantic inserts tags such as 'function-after[...]' in unions; keep only real path parts.
    loc: Path_ = tuple(p for p in first["loc"] if isinstance(p, int) or "[" not in str(p))
    where = loc[:-1] if first["type"] in ("extra_forbidden", "missing") else loc
    line = marked.line_of(loc)
    return PolicyError(source, line, f"{dotted(where)}: {_reason(first)}")


def _check_references(source: str, doc: PolicyDocument, marked: MarkedDocument) -> list[str]:
    """Cross-field rules the schema cannot express; returns warnings, raises on the first error."""

    def fail(path: Path_, reason: str) -> PolicyError:
        return PolicyError(source, marked.line_of(path), f"{dotted(path)}: {reason}")

    for name, provider in doc.providers.items():
        here: Path_ = ("providers", name)
        if provider.kind not in KINDS:
            raise fail(here + ("kind",), f"unknown kind '{provider.kind}' (one of: {', '.join(sorted(KINDS))})")
        if provider.kind == "openai" and not (provider.base_url or provider.endpoints):
            raise fail(here, "kind 'openai' needs a base_url (the upstream's /v1 address) or endpoints (a pool)")
        if provider.endpoints is not None and provider.kind not in ("openai", "sim"):
            raise fail(here + ("endpoints",), "a pool of endpoints is for OpenAI-wire servers (kind openai, or sim)")
        if provider.kind == "azure" and not (provider.base_url and provider.api_version):
            raise fail(here, "kind 'azure' needs base_url (https://NAME.openai.azure.com) and api_version")
        if provider.kind == "anthropic" and (provider.base_url or "").rstrip("/").endswith("/v1"):
            raise fail(here + ("base_url",), "kind 'anthropic' takes base_url without /v1 "
                                             "(https://api.anthropic.com; /v1/messages is added)")
        if provider.kind == "sim" and provider.base_url:
            raise fail(here + ("base_url",), "kind 'sim' starts its own upstream on loopback; drop base_url")
        if provider.via == "litellm" and provider.kind not in NATIVE_KINDS:
            # A sim counts: it takes the kind of the wire it speaks.
            raise fail(here + ("via",), f"'via: litellm' is for kinds the gateway also speaks itself "
                                        f"({', '.join(sorted(NATIVE_KINDS))}); kind '{provider.kind}' "
                                        "goes through litellm already")
        if provider.sim is not None and provider.kind != "sim":
            raise fail(here + ("sim",), "'sim' settings belong to providers of kind 'sim'")
        if provider.base_url and not provider.base_url.startswith(("http://", "https://")):
            raise fail(here + ("base_url",), "base_url must start with http:// or https://")

    for route_name, route in doc.routes.items():
        for i, target in enumerate(route.targets):
            if target.provider not in doc.providers:
                known = ", ".join(sorted(doc.providers))
                raise fail(("routes", route_name, "targets", i, "provider"),
                           f"unknown provider '{target.provider}' (known: {known})")
        seen: set[tuple[str, str]] = set()
        for i, target in enumerate(route.targets):
            pair = (target.provider, target.model)
            if pair in seen:
                raise fail(("routes", route_name, "targets", i), f"target {pair[0]}/{pair[1]} is listed twice")
            seen.add(pair)

    if doc.auth is not None:
        ids: set[str] = set()
        digests: set[str] = set()
        for i, key in enumerate(doc.auth.keys):
            if key.id in ids:
                raise fail(("auth", "keys", i, "id"), f"duplicate key id '{key.id}'")
            if key.sha256.lower() in digests:
                raise fail(("auth", "keys", i, "sha256"), "the same key is listed twice")
            ids.add(key.id)
            digests.add(key.sha256.lower())

    names: set[str] = set()
    for i, budget in enumerate(doc.budgets):
        if budget.name in names:
            raise fail(("budgets", i, "name"), f"duplicate budget name '{budget.name}'")
        names.add(budget.name)
        if budget.to is not None and budget.to not in doc.routes:
            raise fail(("budgets", i, "to"), f"unknown route '{budget.to}' (known: {', '.join(sorted(doc.routes))})")
        if budget.key is not None and doc.auth is not None and budget.key not in {k.id for k in doc.auth.keys}:
            raise fail(("budgets", i, "key"), f"unknown key id '{budget.key}'")

    limit_names: set[str] = set()
    for i, limit in enumerate(doc.rate_limits):
        if limit.name in limit_names:
            raise fail(("rate_limits", i, "name"), f"duplicate rate limit name '{limit.name}'")
        limit_names.add(limit.name)
        if limit.key is not None and doc.auth is not None and limit.key not in {k.id for k in doc.auth.keys}:
            raise fail(("rate_limits", i, "key"), f"unknown key id '{limit.key}'")

    warnings = []
    for name, provider in doc.providers.items():
        if provider.kind in LITELLM_KINDS and provider.api_key is None:
            warnings.append(f"{source}:{marked.line_of(('providers', name))}: providers.{name}: no api_key; "
                            "litellm will look for the provider's usual environment variable")
    return warnings


def parse_policy(text: str, source: str, env: Mapping[str, str] | None = None,
                 checks: Sequence[PolicyCheck] = ()) -> LoadedPolicy:
    """Validate a policy given as text; `source` names it in errors; `checks` add warnings of their own."""
    try:
        marked = load_marked(text, env)
    except YamlError as exc:
        raise PolicyError(source, exc.line, exc.reason) from None
    if not isinstance(marked.data, dict):
        raise PolicyError(source, 1, "a policy is a mapping with version, providers and routes")
    try:
        doc = PolicyDocument.model_validate(marked.data)
    except ValidationError as exc:
        raise _schema_error(source, marked, exc) from None
    warnings = _check_references(source, doc, marked)
    for check in checks:
        warnings += check(source, doc, marked)
    return LoadedPolicy(document=doc, source=source, warnings=tuple(warnings),
                        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def read_policy_text(path: str | Path) -> str:
    """A policy file's text, or a PolicyError saying why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), 0, f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyError(str(path), 0, "the file is not UTF-8 text") from None


def load_policy(path: str | Path, env: Mapping[str, str] | None = None,
                checks: Sequence[PolicyCheck] = ()) -> LoadedPolicy:
    """Read and validate one policy file."""
    return parse_policy(read_policy_text(path), str(path), env, checks)
