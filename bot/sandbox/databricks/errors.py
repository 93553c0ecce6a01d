"""Databricks' error answers (`{"error_code", "message"}`, SCIM's own shape, the 403 of a refused
credential), the bodies injected faults answer with, and the request-body check every handler
shares."""

from __future__ import annotations

import json
from typing import Any

from bot.sandbox.server import Fault, Request, Response

SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

# Error codes the fault injector puts in its bodies, by HTTP status.
FAULT_CODES = {
    400: ("INVALID_PARAMETER_VALUE", "Invalid parameter value."),
    401: ("UNAUTHENTICATED", "Invalid access token."),
    403: ("PERMISSION_DENIED", "Permission denied."),
    404: ("RESOURCE_DOES_NOT_EXIST", "The resource does not exist."),
    409: ("RESOURCE_CONFLICT", "Conflicting request."),
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests; slow down."),
    500: ("INTERNAL_ERROR", "Internal server error."),
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable."),
    504: ("DEADLINE_EXCEEDED", "The request timed out."),
}


class ApiError(Exception):
    """A Databricks error answer: `{"error_code", "message"}` with an HTTP status."""

    def __init__(self, status: int, code: str | int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return Response(self.status, {"error_code": self.code, "message": self.message})


class CredentialRefused(ApiError):
    """The workspace's front door refusing a bearer token that is unknown, revoked or expired.

    Real workspaces answer HTTP 403 (not 401) with a *numeric* `error_code` and the reason again in
    `X-Databricks-Reason-Phrase`: `{"error_code": 403, "message": "Invalid access token."}` for a
    PAT (databricks-sdk-go issues #873, #917, #1046: Content-Length 52 is this compact body, and
    the Go SDK of the time failed to read the number into its string field), and
    `"JWT has expired"` for an expired OAuth access token (databricks-sdk-go issue #1061). It is
    not `PERMISSION_DENIED`, which a valid but non-admin identity gets."""

    def __init__(self, message: str = "Invalid access token.") -> None:
        super().__init__(403, 403, message)

    def response(self) -> Response:
        response = super().response()
        response.headers["X-Databricks-Reason-Phrase"] = self.message
        return response


class ScimError(ApiError):
    """A SCIM error answer (RFC 7644 section 3.12), which the SDK parses differently."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(status, f"SCIM_{status}", detail)
        self.scim_type = scim_type

    def response(self) -> Response:
        body = {"schemas": [SCIM_ERROR_SCHEMA], "detail": self.message, "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return Response(self.status, body)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def fault_body(fault: Fault) -> dict[str, str]:
    """The Databricks error body an injected fault answers with."""
    code, message = FAULT_CODES.get(fault.status, ("UNKNOWN", f"HTTP {fault.status}"))
    return {"error_code": code, "message": message}


def json_body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    body = request.json
    if body is None:
        try:
            body = json.loads(request.body)
        except ValueError:
            raise ApiError(400, "MALFORMED_REQUEST", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "The request body must be a JSON object.")
    return body
