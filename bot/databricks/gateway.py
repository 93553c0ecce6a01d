"""The only module that imports databricks-sdk.

One `SdkWorkspaceGateway` per configured workspace, authenticated by the SDK's unified auth (a
profile, a PAT from a named environment variable, OAuth M2M, or DATABRICKS_* alone). Every SDK
failure leaves here as a `GatewayError` whose message says what to do about it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import (
    BadRequest,
    DatabricksError,
    NotFound,
    PermissionDenied,
    ResourceDoesNotExist,
    TemporarilyUnavailable,
    TooManyRequests,
    Unauthenticated,
)
from urllib3.exceptions import NewConnectionError

from bot.clock import from_http_date, from_ms
from bot.config import DatabricksConfig, WorkspaceConfig
from bot.databricks.records import (
    AuditCall,
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
STATEMENTS_PATH = "/api/2.0/sql/statements"
STATEMENT_MAX_WAIT = 600.0  # seconds per statement: a stopped warehouse starts within minutes
# Groups the audit statement may return: one per identity, token, day, service and action. At about
# 150 bytes a group this stays well under the 25 MiB INLINE limit; more is refused, not cut short.
AUDIT_MAX_GROUPS = 100_000
T = TypeVar("T")


def build_config(
    workspace: WorkspaceConfig, limits: DatabricksConfig, environ: Mapping[str, str] | None = None
) -> Config:
    """SDK configuration for one workspace; credentials named in the TOML are read from the env."""
    environ = os.environ if environ is None else environ
    options: dict[str, Any] = {
        "host": workspace.host,
        "retry_timeout_seconds": limits.retry_timeout_seconds,
        "http_timeout_seconds": limits.http_timeout_seconds,
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
            f"no usable Databricks credentials: {_first_line(error)}. "
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
                "workspace %s: cannot read maxTokenLifetimeDays: %s", self.name, _first_line(error)
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

    # observed usage: system.access.audit through the Statement Execution API ------------------
    def audit_usage(
        self,
        warehouse_id: str,
        since: datetime,
        *,
        max_wait_seconds: float = STATEMENT_MAX_WAIT,
        max_groups: int = AUDIT_MAX_GROUPS,
    ) -> AuditUsage:
        """This workspace's audit events since `since`, aggregated by the warehouse into one row
        per identity, token (through the session its `tokenLogin` opened), day, service and
        action: the result grows with the days and services used, not with the events, so a log
        of millions of rows comes back in a few chunks.

        One parameterised statement. A stopped warehouse starts and is waited for up to
        `max_wait_seconds`; a missing warehouse, a failed statement (such as a result over the
        INLINE limit), more than `max_groups` groups or the wait running out is a GatewayError
        that names the warehouse and what to do."""
        workspace_id = str(self._call("read the workspace id", self._client.get_workspace_id))
        parameters = [
            {"name": "workspace_id", "value": workspace_id, "type": "STRING"},
            {"name": "since", "value": _sql_time(since), "type": "TIMESTAMP"},
        ]
        action = "read API calls (audit log)"
        sql = AUDIT_CALLS_SQL.format(limit=int(max_groups) + 1)
        rows = self._statement(warehouse_id, sql, parameters, max_wait_seconds, action)
        if len(rows) > max_groups:
            raise GatewayError(
                "other",
                f"{action} (SQL warehouse {warehouse_id}): more than {max_groups} groups of audit events "
                "(identity, token, day, service, action); shorten policy.usage_lookback_days",
            )
        return AuditUsage(
            workspace_id=workspace_id,
            since=since,
            calls=tuple(_audit_call(row) for row in rows if row and row[3]),
        )

    def _statement(
        self,
        warehouse_id: str,
        sql: str,
        parameters: list[dict[str, str]],
        max_wait_seconds: float,
        action: str,
    ) -> list[list[str | None]]:
        """Run one statement to the end and return every row of every chunk."""
        action = f"{action} (SQL warehouse {warehouse_id})"
        body = {
            "statement": sql,
            "warehouse_id": warehouse_id,
            "parameters": parameters,
            "wait_timeout": f"{int(min(30, max(5, max_wait_seconds)))}s",
            "on_wait_timeout": "CONTINUE",
            "format": "JSON_ARRAY",
            "disposition": "INLINE",
        }
        do = self._client.api_client.do
        try:
            answer = self._call(action, lambda: do("POST", STATEMENTS_PATH, body=body)) or {}
        except GatewayError as error:
            if error.kind == "not_found":
                raise GatewayError(
                    "not_found",
                    f"{action}: the warehouse does not exist ({error.message}); "
                    f"check audit_warehouse_id of workspace '{self.name}'",
                ) from None
            raise
        statement_id = answer.get("statement_id")
        started, pause = time.monotonic(), 0.2
        while _state(answer) in ("PENDING", "RUNNING"):
            if time.monotonic() - started > max_wait_seconds:
                self._cancel_quietly(statement_id)
                raise GatewayError(
                    "timeout",
                    f"{action}: no result within {max_wait_seconds:g} s (the warehouse may be stopped "
                    "and starting); start it or let it auto-start, then run `tokenbot usage refresh`",
                )
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
            answer = self._call(action, lambda: do("GET", f"{STATEMENTS_PATH}/{statement_id}")) or {}
        state = _state(answer)
        if state != "SUCCEEDED":
            error = (answer.get("status") or {}).get("error") or {}
            detail = error.get("message") or error.get("error_code") or "no reason given"
            ended = state or "without a state"
            hint = ""
            if "inline byte limit" in str(detail).lower():  # Databricks' 25 MiB INLINE cap
                hint = "; shorten policy.usage_lookback_days so that the audit groups fit"
            raise GatewayError("other", f"{action}: the statement ended {ended}: {detail}{hint}")
        result = answer.get("result") or {}
        rows = list(result.get("data_array") or [])
        next_chunk = result.get("next_chunk_index")
        while next_chunk is not None:
            chunk_path = f"{STATEMENTS_PATH}/{statement_id}/result/chunks/{int(next_chunk)}"
            chunk = self._call(action, lambda path=chunk_path: do("GET", path)) or {}
            rows.extend(chunk.get("data_array") or [])
            next_chunk = chunk.get("next_chunk_index")
        manifest = answer.get("manifest") or {}
        if manifest.get("truncated"):
            logger.warning("workspace %s: %s: the result was truncated by the warehouse", self.name, action)
        expected = manifest.get("total_row_count")
        if expected is not None and int(expected) != len(rows):
            raise GatewayError(
                "other", f"{action}: read {len(rows)} rows of the {expected} the warehouse announced"
            )
        return rows

    def _cancel_quietly(self, statement_id: str | None) -> None:
        if not statement_id:
            return
        try:
            self._client.api_client.do("POST", f"{STATEMENTS_PATH}/{statement_id}/cancel")
        except (DatabricksError, requests.RequestException, OSError) as error:
            logger.warning("workspace %s: could not cancel statement %s: %s", self.name, statement_id, error)

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

    # error translation -------------------------------------------------------------------------
    def _call(self, action: str, function: Callable[[], T]) -> T:
        try:
            return function()
        except GatewayError:
            raise
        except Unauthenticated as error:
            raise self._auth_error(action, error) from None
        except PermissionDenied as error:
            if _credential_refused(error):
                raise self._auth_error(action, error) from None
            raise GatewayError(
                "permission",
                f"{action}: permission denied ({_first_line(error)}); the bot's "
                "identity must be a workspace admin to manage tokens",
            ) from None
        except NotFound as error:
            raise GatewayError("not_found", f"{action}: not found ({_first_line(error)})") from None
        except BadRequest as error:
            raise GatewayError("bad_request", f"{action}: refused ({_first_line(error)})") from None
        except (TooManyRequests, TemporarilyUnavailable) as error:
            raise GatewayError(
                "unavailable",
                f"{action}: Databricks is overloaded or unavailable "
                f"({_first_line(error)}); retried until the "
                f"{self._timeout} s limit",
            ) from None
        except TimeoutError as error:
            if isinstance(error.__cause__, TooManyRequests | TemporarilyUnavailable):
                # The SDK gives up with a TimeoutError; what people need is the last answer.
                raise GatewayError(
                    "unavailable",
                    f"{action}: Databricks is overloaded or unavailable "
                    f"({_first_line(error.__cause__)}); retried for {self._timeout} s",
                ) from None
            raise GatewayError(
                "timeout",
                f"{action}: no answer within {self._timeout} s of retries "
                f"({_first_line(error)}); check the host and the network",
                outcome_unknown=_maybe_applied(error.__cause__),
            ) from None
        except (requests.RequestException, OSError) as error:
            raise GatewayError(
                "unavailable",
                f"{action}: cannot reach {self.host} ({_first_line(error)})",
                outcome_unknown=_maybe_applied(error),
            ) from None
        except DatabricksError as error:
            raise GatewayError("other", f"{action}: {_first_line(error)}") from None

    @staticmethod
    def _auth_error(action: str, error: DatabricksError) -> GatewayError:
        return GatewayError(
            "auth",
            f"{action}: authentication failed ({_first_line(error)}); check the workspace's credentials",
        )


# A workspace refuses an unknown, revoked or expired token with HTTP 403 like a missing permission,
# and the SDK raises PermissionDenied for both; the body tells them apart: a refused credential has
# a numeric `error_code` (403) and "Invalid access token." / "JWT has expired" / "Invalid access to
# Org" (databricks-sdk-go issues #873, #917, #1061, #853), a missing permission `PERMISSION_DENIED`.
_REFUSED_CREDENTIAL_MESSAGES = ("invalid access token", "jwt has expired", "invalid access to org")


def _credential_refused(error: DatabricksError) -> bool:
    if error.error_code == "PERMISSION_DENIED":
        return False
    message = str(error).lower()
    return str(error.error_code) == "403" or any(text in message for text in _REFUSED_CREDENTIAL_MESSAGES)


def _maybe_applied(error: BaseException | None) -> bool:
    """Whether a request that failed this way may still have been applied: it was sent and no
    answer came back (a reset or dropped connection, a read timeout, a cut answer). Not when the
    connection could not even be opened, nor when Databricks answered (429, 503, ...)."""
    if isinstance(error, requests.ConnectTimeout):
        return False
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0] if error.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return not isinstance(reason, NewConnectionError)
    return isinstance(error, requests.Timeout | requests.exceptions.ChunkedEncodingError)


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


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


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


# ---------------------------------------------------------------------------------------------
# the audit log statement (the sandbox's SQL subset is enough: see bot/sandbox/databricks.py)

# The token of a session is the one its `tokenLogin` events name, when they name exactly one; every
# event is grouped with that token (or none) by day, service and action. `{limit}` is the bound
# plus one (an int of ours, never user input), to tell "exactly the bound" from "more".
AUDIT_CALLS_SQL = """
SELECT a.user_identity.email AS identity, t.token_id, a.event_date AS event_day,
       a.service_name, a.action_name,
       count(*) AS calls, min(a.event_time) AS first_seen, max(a.event_time) AS last_seen
FROM system.access.audit AS a
LEFT JOIN (
    SELECT session_id, min(request_params['tokenId']) AS token_id
    FROM system.access.audit
    WHERE workspace_id = :workspace_id AND event_time >= :since
      AND service_name = 'accounts' AND action_name = 'tokenLogin'
      AND request_params['tokenId'] IS NOT NULL AND session_id IS NOT NULL
    GROUP BY session_id
    HAVING count(DISTINCT request_params['tokenId']) = 1
) AS t ON a.session_id = t.session_id
WHERE a.workspace_id = :workspace_id AND a.event_time >= :since
GROUP BY a.user_identity.email, t.token_id, a.event_date, a.service_name, a.action_name
ORDER BY event_day, identity, token_id, service_name, action_name
LIMIT {limit}
""".strip()


def _state(answer: Mapping[str, Any]) -> str | None:
    return (answer.get("status") or {}).get("state")


def _sql_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_sql_time(text: str | None) -> datetime | None:
    if not text:
        return None
    text = text.strip().replace(" ", "T", 1)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _count(text: str | None) -> int:
    return int(text) if text else 0


def _audit_call(row: Sequence[str | None]) -> AuditCall:
    identity, token_id, day, service_name, action_name, calls, first_seen, last_seen = row
    return AuditCall(
        identity=identity or None,
        token_id=token_id or None,
        day=date.fromisoformat(day) if day else None,
        service_name=str(service_name),
        action_name=action_name or None,
        calls=_count(calls),
        first_seen=_parse_sql_time(first_seen),
        last_seen=_parse_sql_time(last_seen),
    )
