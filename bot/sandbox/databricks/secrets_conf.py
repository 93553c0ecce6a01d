"""Secret scopes and secrets (Databricks' key, size and count limits) and workspace-conf."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from bot.sandbox.databricks.errors import ApiError, bad_request, json_body, not_found
from bot.sandbox.databricks.state import (
    SECRET_KEY_RE,
    SECRET_MAX_BYTES,
    DatabricksWorkspace,
    Principal,
    to_ms,
)
from bot.sandbox.server import Request, Response


class SecretsAndConfApi(DatabricksWorkspace):
    """`/api/2.0/secrets/...` and `/api/2.0/workspace-conf`."""

    # secrets ------------------------------------------------------------------------------------
    def _put_secret(self, request: Request, caller: Principal) -> Response:
        body = json_body(request)
        scope, key = body.get("scope"), body.get("key")
        if not scope or not key:
            raise bad_request("scope and key are required.")
        if not isinstance(key, str) or not SECRET_KEY_RE.fullmatch(key):
            raise bad_request(
                f"Invalid key name {key!r}: use up to 128 alphanumeric characters, '-', '_' or '.'."
            )
        value = self._secret_value(body)
        size = len(value.encode() if isinstance(value, str) else value)
        if size > SECRET_MAX_BYTES:
            raise bad_request(f"Secret value is {size} bytes, over the 128 KB (131072 bytes) limit.")
        if scope not in self._scopes:
            raise not_found(f"Scope {scope} does not exist!")
        entries = self._scopes[scope]
        if key not in entries and len(entries) >= 1000:
            raise ApiError(400, "RESOURCE_LIMIT_EXCEEDED", f"Scope {scope} already holds 1000 secrets.")
        entries[key] = value
        self._secret_times[(scope, key)] = to_ms(self._clock())
        return Response(body={})

    @staticmethod
    def _secret_value(body: dict[str, Any]) -> str | bytes:
        has_string, has_bytes = body.get("string_value") is not None, body.get("bytes_value") is not None
        if has_string == has_bytes:
            raise bad_request("Exactly one of string_value and bytes_value must be given.")
        if has_string:
            return str(body["string_value"])
        try:
            return base64.b64decode(body["bytes_value"], validate=True)
        except (binascii.Error, TypeError):
            raise bad_request("bytes_value must be base64.") from None

    def _create_scope(self, request: Request, caller: Principal) -> Response:
        name = json_body(request).get("scope")
        if not name:
            raise bad_request("scope is required.")
        if name in self._scopes:
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Scope {name} already exists!")
        self._scopes[name] = {}
        return Response(body={})

    def _list_scopes(self, request: Request, caller: Principal) -> Response:
        scopes = [{"name": name, "backend_type": "DATABRICKS"} for name in self._scopes]
        return Response(body={"scopes": scopes} if scopes else {})

    def _list_secrets(self, request: Request, caller: Principal) -> Response:
        scope = request.arg("scope")
        if scope not in self._scopes:
            raise not_found(f"Scope {scope} does not exist!")
        keys = [
            {"key": key, "last_updated_timestamp": self._secret_times[(scope, key)]}
            for key in self._scopes[scope]
        ]
        return Response(body={"secrets": keys} if keys else {})

    # workspace-conf -----------------------------------------------------------------------------
    def _get_conf(self, request: Request, caller: Principal) -> Response:
        keys = [k for k in (request.arg("keys") or "").split(",") if k]
        if not keys:
            raise bad_request("keys is required, e.g. keys=maxTokenLifetimeDays,enableTokensConfig.")
        unknown = [k for k in keys if k not in self._conf]
        if unknown:
            raise bad_request(f"Invalid keys: {unknown}.")
        return Response(body={k: self._conf[k] for k in keys})

    def _set_conf_route(self, request: Request, caller: Principal) -> Response:
        for key, value in json_body(request).items():
            self._conf[key] = None if value is None else str(value)
        return Response(body={})
