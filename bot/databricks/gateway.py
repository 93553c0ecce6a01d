"""The workspace gateway: tokenbot's calls to Databricks through databricks-sdk.

One `SdkWorkspaceGateway` per configured workspace, authenticated by the SDK's unified auth (a
profile, a PAT from a named environment variable, OAuth M2M, or DATABRICKS_* alone). Every SDK
failure leaves as a `GatewayError` whose message says what to do about it (`bot.databricks.errors`);
the audit-log statement behind `audit_usage` is `bot.databricks.audit`'s.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError, NotFound, ResourceDoesNotExist

from bot.clock import from_http_date, from_ms
from bot.config import DatabricksConfig, WorkspaceConfig
from bot.databricks import consumers
from bot.databricks.audit import AUDIT_MAX_GROUPS, STATEMENT_MAX_WAIT, AuditReader
from bot.databricks.errors import first_line, translate_errors
from bot.databricks.records import (
    AuditConsumers,
    AuditUsage,
    CreatedToken,
    GatewayError,
    Inventory,
    PrincipalRecord,
    TokenRecord,
)

logger = logging.getLogger(__name__)

TOKENS_PATH = "/api/2.0/token-management/tokens"
OBO_TOKENS_PATH = "/api/2.0/token-management/on-behalf-of/tokens"
SECRETS_PUT_PATH = "/api/2.0/secrets/put"
SECRETS_LIST_PATH = "/api/2.0/secrets/list"
SCIM = "/api/2.0/preview/scim/v2"
T = TypeVar("T")


SDK_CONNECTIONS = 100  # at least bot/slack/app.py LISTENER_THREADS


def build_config(
    workspace: WorkspaceConfig, limits: DatabricksConfig, environ: Mapping[str, str] | None = None
) -> Config:
    """SDK configuration for one workspace; credentials named in the TOML are read from the env."""
    environ = os.environ if environ is None else environ
    options: dict[str, Any] = {
        "host": workspace.host,
        "retry_timeout_seconds": limits.retry_timeout_seconds,
        "http_timeout_seconds": limits.http_timeout_seconds,
        # Connections kept per workspace host. The SDK hands this to requests' HTTPAdapter as
        # pool_maxsize (databricks/sdk/_base_client.py; default 20): a burst of decisions calls
        # Databricks from every listener worker at once, and past the pool each extra connection
        # is opened, then dropped with a "Connection pool is full" warning.
        "max_connection_pools": SDK_CONNECTIONS,
    }
    if workspace.profile:
        options["profile"] = workspace.profile
    for option, variable in (
        ("token", workspace.token_env),
        ("client_id", workspace.client_id_env),
        ("client_secret", workspace.client_secret_env),
    ):
        if variable:
            if not environ.get(variable):
                raise GatewayError(
                    "auth",
                    f"environment variable {variable} (workspaces.{option}_env "
                    f"of '{workspace.name}') is not set",
                )
            options[option] = environ[variable]
    if "token" in options:
        options["auth_type"] = "pat"
    elif "client_id" in options:
        options["auth_type"] = "oauth-m2m"
    try:
        return Config(**options)
    except ValueError as error:  # the SDK found no usable credentials
        raise GatewayError(
            "auth",
            f"no usable Databricks credentials: {first_line(error)}. "
            "Set token_env, client_id_env/client_secret_env or profile for "
            "the workspace, or DATABRICKS_* in the environment",
        ) from None


class SdkWorkspaceGateway:
    """Databricks calls for one workspace through the real SDK."""

    def __init__(
        self, workspace: WorkspaceConfig, limits: DatabricksConfig, environ: Mapping[str, str] | None = None
    ) -> None:
        self.name = workspace.name
        self.host = workspace.host
        self._client = WorkspaceClient(config=build_config(workspace, limits, environ))
        self._timeout = limits.retry_timeout_seconds
        self._audit = AuditReader(self._client, self._call, self.name)

    # inventory ---------------------------------------------------------------------------------
    def fetch_inventory(self, *, known_principals: frozenset[str]) -> Inventory:
        tokens = self.list_tokens()
        owners = sorted({t.owner_id for t in tokens if t.owner_id and t.owner_id not in known_principals})
        principals = tuple(
            self._call("read principals (SCIM)", lambda o=owner: self._principal(o)) for owner in owners
        )
        return Inventory(tokens=tokens, principals=principals, max_token_lifetime_days=self._max_lifetime())

    def list_tokens(self) -> tuple[TokenRecord, ...]:
        return self._call("list tokens (token-management)", self._list_tokens)

    def _list_tokens(self) -> tuple[TokenRecord, ...]:
        # The raw JSON, not the SDK's dataclass: an autoscope_state the SDK does not know would be
        # turned into None there, and DESIGN.md says unknown values are kept as text.
        body = self._client.api_client.do("GET", TOKENS_PATH) or {}
        return tuple(_token_record(info) for info in body.get("token_infos", ()))

    def _principal(self, principal_id: str) -> PrincipalRecord:
        try:
            user = self._client.api_client.do("GET", f"{SCIM}/Users/{principal_id}")
            return PrincipalRecord(
                principal_id=principal_id,
                kind="user",
                email=user.get("userName") or _primary_email(user),
                display_name=user.get("displayName"),
                active=user.get("active"),
            )
        except NotFound:
            pass
        try:
            sp = self._client.api_client.do("GET", f"{SCIM}/ServicePrincipals/{principal_id}")
            return PrincipalRecord(
                principal_id=principal_id,
                kind="service_principal",
                application_id=sp.get("applicationId"),
                display_name=sp.get("displayName"),
                active=sp.get("active"),
            )
        except NotFound:
            return PrincipalRecord(principal_id=principal_id, kind=None)

    def _max_lifetime(self) -> int | None:
        try:
            conf = self._client.workspace_conf.get_status(keys="maxTokenLifetimeDays") or {}
        except DatabricksError as error:
            logger.warning(
                "workspace %s: cannot read maxTokenLifetimeDays: %s", self.name, first_line(error)
            )
            return None
        value = conf.get("maxTokenLifetimeDays")
        return int(value) if value and str(value).isdigit() and int(value) > 0 else None

    # one token, and secrets ----------------------------------------------------------------------
    # Raw requests rather than the SDK's dataclasses, as for the listing: the raw TokenInfo keeps
    # an autoscope_state the SDK does not know, and the calls stay visible in one place.
    def get_token(self, token_id: str) -> TokenRecord | None:
        def read() -> TokenRecord | None:
            try:
                body = self._client.api_client.do("GET", f"{TOKENS_PATH}/{token_id}") or {}
            except ResourceDoesNotExist:
                return None
            return _token_record(body["token_info"])

        return self._call("read token (token-management)", read)

    def delete_token(self, token_id: str) -> bool:
        def delete() -> bool:
            try:
                self._client.api_client.do("DELETE", f"{TOKENS_PATH}/{token_id}")
            except ResourceDoesNotExist:  # revoked meanwhile, by Databricks or someone else
                return False
            return True

        return self._call("revoke token (token-management)", delete)

    def update_scopes(self, token_id: str, scopes: Sequence[str]) -> None:
        body = {"token": {"scopes": list(scopes)}, "update_mask": "scopes"}
        self._call(
            "set token scopes (token-management)",
            lambda: self._client.api_client.do("PATCH", f"{TOKENS_PATH}/{token_id}", body=body),
        )

    def create_obo_token(
        self, application_id: str, lifetime_seconds: int, comment: str, scopes: Sequence[str]
    ) -> CreatedToken:
        body: dict[str, Any] = {
            "application_id": application_id,
            "lifetime_seconds": lifetime_seconds,
            "comment": comment,
        }
        if scopes:
            body["scopes"] = list(scopes)
        action = "create token on behalf of a service principal"
        answer = self._call(action, lambda: self._client.api_client.do("POST", OBO_TOKENS_PATH, body=body))
        # The SDK's debug log masks token_value; nothing here logs the answer.
        info, value = (answer or {}).get("token_info") or {}, (answer or {}).get("token_value")
        if not value or not info.get("token_id"):
            raise GatewayError("other", f"{action}: the answer held no token")
        return CreatedToken(token_id=str(info["token_id"]), value=value)

    def put_secret(self, scope: str, key: str, value: str) -> None:
        body = {"scope": scope, "key": key, "string_value": value}
        try:
            self._call(
                f"write secret {scope}/{key}",
                lambda: self._client.api_client.do("POST", SECRETS_PUT_PATH, body=body),
            )
        except GatewayError as error:
            # Databricks does not echo values, but a message must never be the way one leaks.
            message = error.message.replace(value, "[REDACTED]") if value else error.message
            raise GatewayError(error.kind, message, outcome_unknown=error.outcome_unknown) from None

    def secret_updated_at(self, scope: str, key: str) -> datetime | None:
        # `{"secrets": [{"key", "last_updated_timestamp"}]}`; the key is absent when the scope is
        # empty (Secrets API reference, list secrets). Values are never listed.
        body = self._call(
            f"list secrets of scope {scope}",
            lambda: self._client.api_client.do("GET", SECRETS_LIST_PATH, query={"scope": scope}),
        )
        found = [entry for entry in (body or {}).get("secrets", ()) if entry.get("key") == key]
        return from_ms(found[0].get("last_updated_timestamp")) if found else None

    # observed usage (bot.databricks.audit) -----------------------------------------------------
    def audit_usage(
        self,
        warehouse_id: str,
        since: datetime,
        *,
        max_wait_seconds: float = STATEMENT_MAX_WAIT,
        max_groups: int = AUDIT_MAX_GROUPS,
    ) -> AuditUsage:
        """This workspace's audit events since `since`, one row per identity, token, day, service
        and action (`AuditReader.usage` says how, and which failures it raises)."""
        return self._audit.usage(
            warehouse_id, since, max_wait_seconds=max_wait_seconds, max_groups=max_groups
        )

    def audit_consumers(
        self,
        warehouse_id: str,
        since: datetime,
        recent_since: datetime,
        *,
        max_wait_seconds: float = STATEMENT_MAX_WAIT,
    ) -> AuditConsumers:
        """Who used each token (`bot.databricks.consumers` says how, and what it refuses)."""
        return consumers.read_consumers(
            self._audit, warehouse_id, since, recent_since, max_wait_seconds=max_wait_seconds
        )

    # clock -------------------------------------------------------------------------------------
    def server_time(self) -> datetime:
        """The `Date` header of a fresh answer (SCIM Me: small, read-only): Databricks' clock, which
        enforcement compares with the local one before it revokes anything."""
        answer = self._call(
            "read Databricks' clock (SCIM Me)",
            lambda: self._client.api_client.do("GET", f"{SCIM}/Me", response_headers=["Date"]),
        )
        value = (answer or {}).get("Date")
        moment = from_http_date(value)
        if moment is None:
            raise GatewayError(
                "other", f"workspace {self.name} answered without a valid Date header ({value!r})"
            )
        return moment

    # doctor ------------------------------------------------------------------------------------
    def check_access(self) -> list[tuple[str, str | None]]:
        """Cheap read-only probes for `tokenbot doctor`: (what, None when fine, else what to fix).
        Reachable with good credentials (SCIM Me), token management allowed (the bot's own tokens
        only), SCIM readable."""
        do = self._client.api_client.do
        try:
            me = self._call("reach the workspace (SCIM Me)", lambda: do("GET", f"{SCIM}/Me")) or {}
        except GatewayError as error:
            return [("credentials" if error.kind == "auth" else "reachable", error.message)]
        own = {"created_by_id": str(me["id"])} if str(me.get("id", "")).isdigit() else None
        probes = (
            ("token management", "list tokens (token-management)", TOKENS_PATH, own),
            ("SCIM", "read users (SCIM)", f"{SCIM}/Users", {"count": 1, "attributes": "id"}),
        )
        checks: list[tuple[str, str | None]] = [("reachable", None)]
        for what, action, path, query in probes:
            try:
                self._call(action, lambda p=path, q=query: do("GET", p, query=q))
                checks.append((what, None))
            except GatewayError as error:
                checks.append((what, error.message))
        return checks

    # errors ------------------------------------------------------------------------------------
    def _call(self, action: str, function: Callable[[], T]) -> T:
        return translate_errors(action, function, host=self.host, timeout=self._timeout)


def _token_record(info: dict[str, Any]) -> TokenRecord:
    return TokenRecord(
        token_id=str(info["token_id"]),
        owner_id=_text(info.get("owner_id")),
        created_by=info.get("created_by_username") or _text(info.get("created_by_id")),
        comment=info.get("comment") or "",
        created_at=from_ms(info.get("creation_time")),
        expires_at=from_ms(info.get("expiry_time")),
        last_used_on=from_ms(info.get("last_used_day")),
        scopes=tuple(info.get("scopes") or ()),
        inferred_scopes=tuple(info.get("inferred_scopes") or ()),
        backfill_scopes=tuple(info.get("backfill_scopes") or ()),
        autoscope_state=info.get("autoscope_state"),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _primary_email(user: dict[str, Any]) -> str | None:
    emails = user.get("emails") or []
    primary = [e.get("value") for e in emails if e.get("primary")]
    return (primary or [e.get("value") for e in emails] or [None])[0]


def gateway_factory(
    workspaces: Sequence[WorkspaceConfig], limits: DatabricksConfig
) -> Callable[[str], SdkWorkspaceGateway]:
    """name -> a gateway for that workspace. Clients are built once per workspace and reused (the
    SDK's HTTP session is thread-safe), so a burst of clicks does not rebuild them."""
    by_name = {workspace.name: workspace for workspace in workspaces}
    built: dict[str, SdkWorkspaceGateway] = {}
    lock = threading.Lock()

    def gateway_for(name: str) -> SdkWorkspaceGateway:
        with lock:
            if name not in built:
                if name not in by_name:
                    raise GatewayError("not_found", f"workspace {name!r} is not configured")
                built[name] = SdkWorkspaceGateway(by_name[name], limits)
            return built[name]

    return gateway_for
