"""A local Databricks workspace that the real databricks-sdk talks to over HTTP.

`DatabricksSandbox` serves the REST shapes tokenbot relies on (see ../shared/APIS.md) from memory:
token management (admin), own tokens, SCIM Users / ServicePrincipals / Me, secrets, workspace-conf,
SQL warehouses and statement execution over an in-memory `system.access.audit` table, plus the
`/.well-known/databricks-config`, OIDC discovery and token endpoints for OAuth M2M. Faults come from
`bot.sandbox.server.SandboxServer`.

Identities: the admin (`admin_token`) is a real SCIM user (`ADMIN_USER_ID`, `admin_user_name`) and
is listed by `/Users`. Tokens created through the API authenticate as their owner (non-admin unless
the owner is the admin) and mark themselves used; tokens added with `add_token` have no value.

Statement execution answers the SQL subset of `bot.sandbox.databricks.sql`; anything else answers
status FAILED with an error naming what is unsupported. Results are JSON_ARRAY rows of
strings or nulls, cut into chunks of `chunk_rows` rows (Databricks cuts by size, not rows); a result
over `inline_byte_limit` (25 MiB) fails as Databricks' does; `row_limit` and `byte_limit` truncate.

Credentials: an unknown, revoked or expired token gets Databricks' 403 "Invalid access token." (an
expired OAuth access token "JWT has expired"), not 401 (see `CredentialRefused`); OAuth access
tokens live `oauth_token_lifetime` seconds.

Knowingly not emulated: token scope names are not validated; Databricks' own inactivity revocation
and auto-scoping do not run by themselves (call `revoke_token` / `set_autoscope`); disabling tokens
(`enableTokensConfig`) only blocks creation; secret ACLs (non-admins may not write, admins may);
EXTERNAL_LINKS / ARROW_STREAM results; OAuth U2M and token exchange; the answer to a request with
no credentials at all (401 here, *unconfirmed*).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.sandbox.databricks.errors import ApiError, CredentialRefused, fault_body
from bot.sandbox.databricks.oauth import OAuthApi
from bot.sandbox.databricks.scim import ScimApi
from bot.sandbox.databricks.secrets_conf import SecretsAndConfApi
from bot.sandbox.databricks.state import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_WORKSPACE_ID,
    INLINE_BYTE_LIMIT,
    NON_ADMIN_USER_NAME,
    OAUTH_TOKEN_LIFETIME,
    TOKEN_QUOTA_PER_USER,
    Credential,
    LostAnswer,
    Principal,
    midnight_ms,
    to_ms,
    user_scim,
)
from bot.sandbox.databricks.statements import StatementApi
from bot.sandbox.databricks.tokens import TokenApi
from bot.sandbox.server import Request, Response, SandboxServer


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Response]
    access: str  # public, user, admin


class DatabricksSandbox(TokenApi, ScimApi, SecretsAndConfApi, StatementApi, OAuthApi):
    """One local Databricks workspace; a context manager. Builders may be called before `start()`."""

    def __init__(
        self,
        admin_token: str = "dapi-sandbox-admin",  # noqa: S107 - a sandbox credential
        workspace_id: int = DEFAULT_WORKSPACE_ID,
        *,
        admin_user_name: str = "admin@example.com",
        chunk_rows: int = 1000,
        token_quota: int = TOKEN_QUOTA_PER_USER,
        oauth_token_lifetime: float = OAUTH_TOKEN_LIFETIME,
        inline_byte_limit: int = INLINE_BYTE_LIMIT,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.admin_token = admin_token
        self.workspace_id = int(workspace_id)
        self.account_id = DEFAULT_ACCOUNT_ID
        self.chunk_rows = chunk_rows
        self.token_quota = token_quota
        self.oauth_token_lifetime = oauth_token_lifetime  # seconds; tests set a few
        self.inline_byte_limit = inline_byte_limit  # tests set a small one
        super().__init__(admin_token, admin_user_name, clock)
        self._routes = self._build_routes()
        self._server = SandboxServer("databricks", self._route, fault_body)

    # lifecycle ----------------------------------------------------------------------------------
    def start(self) -> DatabricksSandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> DatabricksSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._server.base_url

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    # faults (see SandboxServer.fail; status 0 with a delay adds latency only) ------------------------
    def fail(
        self,
        method: str,
        path_regex: str,
        status: int = 0,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0,
        drop: bool = False,
        body: Any = None,
        *,
        apply_then_drop: bool = False,
        answer_late_by: float = 0,
        after: int = 0,
    ) -> None:
        """Inject a fault into the next `times` matching requests (after the next `after` of them,
        answered normally: a read that works, then fails).

        `apply_then_drop` / `answer_late_by=seconds`: the request is applied (the token created or
        deleted, the scopes or the secret written) and then its answer is lost: the connection is
        dropped, or the answer comes after that many seconds (past the client's
        http_timeout_seconds). Real services do this under network faults (a reset after the
        server committed, a proxy timing out a slow answer), and the client cannot tell it from
        a request that never arrived. The SDK retries both, for every method (`_is_retryable` in
        databricks/sdk/_base_client.py: `requests.ConnectionError` and `requests.Timeout`), until
        retry_timeout_seconds, then raises TimeoutError: a retried create makes a second token."""
        if apply_then_drop or answer_late_by:
            with self._lock:
                self._lost_answers.append(
                    LostAnswer(method.upper(), re.compile(path_regex), times, float(answer_late_by))
                )
            return
        self._server.fail(method, path_regex, status, times, retry_after, delay, drop, body, after)

    def clear_faults(self) -> None:
        self._server.clear_faults()
        with self._lock:
            self._lost_answers.clear()

    def _lose_answer(self, request: Request, response: Response) -> Response | None:
        """After routing: None (a dropped connection) or the answer, late, for a lost-answer fault."""
        with self._lock:
            lost = next((fault for fault in self._lost_answers if fault.matches(request)), None)
            if lost is None:
                return response
            lost.times -= 1
            if lost.times <= 0:
                self._lost_answers.remove(lost)
        if not lost.late_by:
            return None
        time.sleep(lost.late_by)  # outside the lock: the rest of the workspace keeps answering
        return response

    def down(self) -> None:
        self._server.down()

    def up(self) -> None:
        self._server.up()

    # routing ------------------------------------------------------------------------------------
    def _build_routes(self) -> list[Route]:
        scim = r"/api/2\.0/preview/scim/v2"
        tm = r"/api/2\.0/token-management"
        table = [
            ("GET", r"/\.well-known/databricks-config", self._well_known, "public"),
            ("GET", r"/oidc/\.well-known/oauth-authorization-server", self._oidc_discovery, "public"),
            ("POST", r"/oidc/v1/token", self._oidc_token, "public"),
            ("GET", tm + r"/tokens", self._list_tokens, "admin"),
            ("GET", tm + r"/tokens/(?P<token_id>[^/]+)", self._get_token, "admin"),
            ("DELETE", tm + r"/tokens/(?P<token_id>[^/]+)", self._delete_token_route, "admin"),
            ("PATCH", tm + r"/tokens/(?P<token_id>[^/]+)", self._patch_token, "admin"),
            ("POST", tm + r"/on-behalf-of/tokens", self._create_obo_token, "admin"),
            ("POST", r"/api/2\.0/token/create", self._create_own_token, "user"),
            ("GET", r"/api/2\.0/token/list", self._list_own_tokens, "user"),
            ("POST", r"/api/2\.0/token/delete", self._delete_own_token, "user"),
            ("PATCH", r"/api/2\.0/token/(?P<token_id>[^/]+)", self._patch_own_token, "user"),
            ("GET", scim + r"/Me", self._scim_me, "user"),
            ("GET", scim + r"/Users", lambda r, c: self._scim_list(r, "user"), "user"),
            ("GET", scim + r"/Users/(?P<id>[^/]+)", lambda r, c, id: self._scim_get(r, "user", id), "user"),
            ("GET", scim + r"/ServicePrincipals", lambda r, c: self._scim_list(r, "sp"), "user"),
            (
                "GET",
                scim + r"/ServicePrincipals/(?P<id>[^/]+)",
                lambda r, c, id: self._scim_get(r, "sp", id),
                "user",
            ),
            ("POST", r"/api/2\.0/secrets/put", self._put_secret, "admin"),
            ("POST", r"/api/2\.0/secrets/scopes/create", self._create_scope, "admin"),
            ("GET", r"/api/2\.0/secrets/scopes/list", self._list_scopes, "user"),
            ("GET", r"/api/2\.0/secrets/list", self._list_secrets, "user"),
            ("GET", r"/api/2\.0/workspace-conf", self._get_conf, "user"),
            ("PATCH", r"/api/2\.0/workspace-conf", self._set_conf_route, "admin"),
            ("GET", r"/api/2\.0/sql/warehouses", self._list_warehouses, "user"),
            ("GET", r"/api/2\.0/sql/warehouses/(?P<id>[^/]+)", self._get_warehouse, "user"),
            ("POST", r"/api/2\.0/sql/statements/?", self._execute_statement, "user"),
            ("GET", r"/api/2\.0/sql/statements/(?P<statement_id>[^/]+)", self._get_statement, "user"),
            (
                "POST",
                r"/api/2\.0/sql/statements/(?P<statement_id>[^/]+)/cancel",
                self._cancel_statement,
                "user",
            ),
            (
                "GET",
                r"/api/2\.0/sql/statements/(?P<statement_id>[^/]+)/result/chunks/(?P<index>\d+)",
                self._get_chunk,
                "user",
            ),
        ]
        return [
            Route(method, re.compile(pattern), handler, access) for method, pattern, handler, access in table
        ]

    def _route(self, request: Request) -> Response | None:
        route, match = next(
            (
                (r, m)
                for r in self._routes
                if r.method == request.method and (m := r.pattern.fullmatch(request.path))
            ),
            (None, None),
        )
        if route is None:
            response = ApiError(
                404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.path}'"
            ).response()
        else:
            with self._lock:
                try:
                    caller = None if route.access == "public" else self._authenticate(request, route.access)
                    response = route.handler(request, caller, **match.groupdict())
                except ApiError as error:
                    response = error.response()
        response.headers.setdefault("x-databricks-org-id", str(self.workspace_id))
        return self._lose_answer(request, response)

    def _authenticate(self, request: Request, access: str) -> Principal:
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:  # *unconfirmed*: no public log of this answer
            raise ApiError(
                401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."
            )
        credential = self._credentials.get(value.strip())
        if credential is None or not self._credential_live(credential):
            raise CredentialRefused()
        if credential.expires_at is not None and credential.expires_at <= self._clock():
            raise CredentialRefused("JWT has expired")
        if access == "admin" and not credential.admin:  # the code is Databricks'; the text *unconfirmed*
            raise ApiError(403, "PERMISSION_DENIED", "Only workspace admins can use this API.")
        if credential.token_id is not None:
            self._tokens[credential.token_id]["last_used_day"] = midnight_ms(self._clock())
        return self._principals.get(credential.principal_id) or Principal(
            credential.principal_id,
            "user",
            user_scim(credential.principal_id, NON_ADMIN_USER_NAME, "Sandbox User", True),
        )

    def _credential_live(self, credential: Credential) -> bool:
        if credential.token_id is None:
            return True
        info = self._tokens.get(credential.token_id)
        return info is not None and (info["expiry_time"] == -1 or info["expiry_time"] > to_ms(self._clock()))
