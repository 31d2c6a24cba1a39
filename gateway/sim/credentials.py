"""A simulated provider that takes each caller's own credentials (`credentials: client`): what it
demands, and the words the real APIs refuse a credential with (checked against the SDKs' own error
types and captured answers)."""

from __future__ import annotations

from aiohttp import web

OAUTH_TOKEN_PREFIX = "sk-ant-oat"          # a Claude subscription's OAuth access token
OAUTH_BETA = "oauth-2025-04-20"            # the beta flag an OAuth bearer must come with

ANTHROPIC_NO_KEY = "x-api-key header is required"
ANTHROPIC_OAUTH_WITHOUT_BETA = "OAuth authentication is currently not supported."
ANTHROPIC_OAUTH_EXPIRED = "OAuth token has expired. Please obtain a new token or refresh your existing token."
ANTHROPIC_BAD_KEY = "invalid x-api-key"
ANTHROPIC_USAGE_LIMIT = "This request would exceed your account's rate limit. Please try again later."
OPENAI_NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header "
                 "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
OPENAI_QUOTA = ("You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.")


def presented(request: web.Request) -> str | None:
    """The credential a request carries: its bearer token, else its x-api-key."""
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer ") and authorization[7:].strip():
        return authorization[7:].strip()
    return request.headers.get("x-api-key") or None


def is_oauth(request: web.Request) -> bool:
    return request.headers.get("Authorization", "").startswith(f"Bearer {OAUTH_TOKEN_PREFIX}")


def anthropic_problem(request: web.Request) -> str | None:
    """Why the Messages API refuses this request's credential with a 401 (None: it takes it)."""
    if presented(request) is None:
        return ANTHROPIC_NO_KEY
    if is_oauth(request):
        betas = {b.strip() for b in request.headers.get("anthropic-beta", "").split(",")}
        if OAUTH_BETA not in betas:
            return ANTHROPIC_OAUTH_WITHOUT_BETA
    return None


def anthropic_fault_message(request: web.Request, status: int) -> str | None:
    """The words of a scripted refusal of a caller's credential, as Anthropic says them."""
    if status == 401:
        return ANTHROPIC_OAUTH_EXPIRED if is_oauth(request) else ANTHROPIC_BAD_KEY
    if status == 429:
        return ANTHROPIC_USAGE_LIMIT
    return None


def openai_fault_message(request: web.Request, status: int, code: str | None) -> str | None:
    """The words of a scripted refusal of a caller's key, as OpenAI says them (the key masked)."""
    if status == 401:
        key = presented(request) or ""
        return (f"Incorrect API key provided: {key[:3]}***{key[-4:] if len(key) > 8 else ''}. You can find your "
                "API key at https://platform.openai.com/account/api-keys.")
    if status == 429 and code == "insufficient_quota":
        return OPENAI_QUOTA
    return None
