"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}` with the right status."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.wires import messages_chat
from gateway.wires.openai_error import error_body as error_body  # here too, where the API errors are

JSON = "application/json"


class ApiError(Exception):
    """An error answered to the client as is; raised by request validation, auth and dispatch."""

    def __init__(self, status: int, message: str, type_: str, code: str | None = None,
                 param: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code, self.param)




def error_response(err: ApiError, extra_headers: Mapping[str, str] | None = None,
                   endpoint: str = "chat") -> web.Response:
    """The error as the client's API shapes it: OpenAI's everywhere but on Anthropic's Messages."""
    headers = dict(err.headers)
    if extra_headers:
        headers.update(extra_headers)
    body = messages_chat.error_body(err.status, err.message) if endpoint == "messages" else err.body()
    return web.Response(status=err.status, body=body, content_type=JSON, headers=headers)


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", code=code, param=param)


def invalid_api_key() -> ApiError:
    return ApiError(401, "Incorrect API key provided. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                    "invalid_request_error", code="invalid_api_key")


def response_not_found(response_id: str) -> ApiError:
    return ApiError(404, f"Previous response with id '{response_id}' not found (this gateway keeps the responses "
                         "it served for the policy's response_store.ttl_s).", "invalid_request_error",
                    code="previous_response_not_found", param="previous_response_id")


def not_admin() -> ApiError:
    return ApiError(403, "This endpoint needs an admin key.", "invalid_request_error", code="forbidden")


def model_not_found(model: str, routes: tuple[str, ...]) -> ApiError:
    listed = ", ".join(f"'{r}'" for r in routes)
    return ApiError(404, f"The model '{model}' does not exist on this gateway. Routes that exist: {listed}.",
                    "invalid_request_error", code="model_not_found", param="model")


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than this gateway accepts ({limit} bytes).",
                    "invalid_request_error", code="request_too_large")


def overloaded(why: str, retry_after_s: int) -> ApiError:
    return ApiError(503, f"The gateway is {why}; retry in {retry_after_s} s.",
                    "server_error", code="overloaded", headers={"Retry-After": str(retry_after_s)})


def budget_exceeded(message: str, retry_after_s: int | None) -> ApiError:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s else {}
    return ApiError(429, message, "insufficient_quota", code="budget_exceeded", headers=headers)


def rate_limited(message: str, kind: str, retry_after_s: int, headers: Mapping[str, str]) -> ApiError:
    """OpenAI's shape for a rate limit: type `requests` or `tokens`, code `rate_limit_exceeded`."""
    return ApiError(429, message, kind, code="rate_limit_exceeded",
                    headers={"Retry-After": str(retry_after_s), **headers})
