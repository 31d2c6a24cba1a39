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
        # The request's body was not (wholly) read: the connection cannot carry another request.
        self.close_connection = False

    def closing(self) -> ApiError:
        self.close_connection = True
        return self

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code, self.param)




def error_response(err: ApiError, extra_headers: Mapping[str, str] | None = None,
                   endpoint: str = "chat") -> web.Response:
    """The error as the client's API shapes it: OpenAI's everywhere but on Anthropic's Messages."""
    headers = dict(err.headers)
    if extra_headers:
        headers.update(extra_headers)
    body = messages_chat.error_body(err.status, err.message) if endpoint == "messages" else err.body()
    resp = web.Response(status=err.status, body=body, content_type=JSON, headers=headers)
    if err.close_connection:
        resp.force_close()
    return resp


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", code=code, param=param)


def invalid_api_key() -> ApiError:
    return ApiError(401, "Incorrect API key provided. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>', "
                         "or as 'x-recloser-key: <key>' when those carry your own provider credentials.",
                    "invalid_request_error", code="invalid_api_key")


def response_not_found(response_id: str) -> ApiError:
    return ApiError(404, f"Previous response with id '{response_id}' not found (this gateway keeps the responses "
                         "it served for the policy's response_store.ttl_s).", "invalid_request_error",
                    code="previous_response_not_found", param="previous_response_id")


def unauthorized() -> ApiError:
    """An operational endpoint without a known key: no word on which keys exist."""
    return ApiError(401, "Unauthorized.", "invalid_request_error", code="unauthorized")


def not_admin() -> ApiError:
    """A known key without the scope an operational endpoint needs: no word on what it lacks."""
    return ApiError(403, "Forbidden.", "invalid_request_error", code="forbidden")


def model_not_found(model: str, routes: tuple[str, ...]) -> ApiError:
    listed = ", ".join(f"'{r}'" for r in routes)
    shown = model if len(model) <= 100 else model[:100] + "…"  # the name is the client's: never a page of it
    return ApiError(404, f"The model '{shown}' does not exist on this gateway. Routes that exist: {listed}.",
                    "invalid_request_error", code="model_not_found", param="model")


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than this gateway accepts ({limit} bytes).",
                    "invalid_request_error", code="request_too_large").closing()


def body_too_slow(timeout_s: float) -> ApiError:
    return ApiError(408, f"The request was not received within {timeout_s:g} s; send it at once.",
                    "invalid_request_error", code="request_timeout").closing()


def undecodable_body(encoding: str) -> ApiError:
    why = f"is not the {encoding} its Content-Encoding says" if encoding not in ("", "identity") \
        else "is not framed as HTTP/1.1 requires (chunked encoding or length)"
    return ApiError(400, f"The request body {why}.", "invalid_request_error",
                    code="invalid_body_encoding").closing()


def unsupported_encoding() -> ApiError:
    return ApiError(415, "The request's Content-Encoding is not supported; send identity, gzip or deflate.",
                    "invalid_request_error", code="unsupported_content_encoding")


def client_gone() -> ApiError:
    return ApiError(400, "The client closed the connection before its request body ended.",
                    "invalid_request_error", code="incomplete_body").closing()


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
