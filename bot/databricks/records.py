"""What the rest of tokenbot knows of Databricks: plain records, one error type, and the
interface a workspace gateway offers. No SDK import here, so services and tests of services
depend on this and not on databricks-sdk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    owner_id: str | None
    created_by: str | None  # username (email) of the creator, else its id
    comment: str
    created_at: datetime | None
    expires_at: datetime | None  # None = never
    last_used_on: datetime | None  # midnight UTC of the last-use day
    scopes: tuple[str, ...]
    inferred_scopes: tuple[str, ...]
    backfill_scopes: tuple[str, ...]
    autoscope_state: str | None  # raw text, unknown values kept


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    principal_id: str
    kind: str | None  # "user", "service_principal", or None when no such principal exists
    email: str | None = None
    application_id: str | None = None
    display_name: str | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class Inventory:
    """One workspace's tokens, the principals resolved for them, and its settings."""

    tokens: tuple[TokenRecord, ...]
    principals: tuple[PrincipalRecord, ...]
    max_token_lifetime_days: int | None


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """A token just created on behalf of a service principal.

    `value` lives only in memory, between the create call and the secret write: it is left out
    of `repr` and must never be logged, stored, sent to Slack or put into an error message.
    """

    token_id: str
    value: str = field(repr=False)


class GatewayError(Exception):
    """A Databricks call failed; `message` says what happened and what to do, in plain words.

    `kind` is one of: auth, permission, unavailable, timeout, not_found, bad_request, other.
    `outcome_unknown`: the request may have reached Databricks and been applied, but no answer
    came back (a dropped connection, an answer slower than the timeout): a write must be checked
    before anyone is told whether it happened.
    """

    def __init__(self, kind: str, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.outcome_unknown = outcome_unknown


class WorkspaceGateway(Protocol):
    name: str

    def fetch_inventory(self, *, known_principals: frozenset[str]) -> Inventory:
        """List every token, resolve owners not in `known_principals`, read the lifetime limit."""
        ...

    # one token, and secrets: each raises GatewayError; none ever echoes a token value -------
    def get_token(self, token_id: str) -> TokenRecord | None:
        """One token as Databricks has it now; None when it no longer exists."""
        ...

    def delete_token(self, token_id: str) -> bool:
        """Revoke a token; False when it was already gone (404 RESOURCE_DOES_NOT_EXIST)."""
        ...

    def update_scopes(self, token_id: str, scopes: Sequence[str]) -> None:
        """Set a token's scopes by hand (PATCH update_mask=scopes): auto-scoping ends for it."""
        ...

    def create_obo_token(
        self, application_id: str, lifetime_seconds: int, comment: str, scopes: Sequence[str]
    ) -> CreatedToken:
        """Create a token on behalf of a service principal; no scopes given means full access."""
        ...

    def put_secret(self, scope: str, key: str, value: str) -> None:
        """Write a string into a secret scope (created or overwritten)."""
        ...

    def server_time(self) -> datetime:
        """Databricks' clock: the `Date` header of a fresh, read-only answer."""
        ...

    def secret_updated_at(self, scope: str, key: str) -> datetime | None:
        """When the secret was last written (Databricks' clock); None when there is no such key."""
        ...

    def list_tokens(self) -> tuple[TokenRecord, ...]:
        """Every token of the workspace as Databricks lists it now."""
        ...


# --- observed usage (system.access.audit through the Statement Execution API) ---------------------


@dataclass(frozen=True, slots=True)
class AuditCall:
    """Audit events grouped by identity, token, day, service and action. `token_id` is the token
    whose `tokenLogin` opened the events' session (None: no login session, or one with several
    tokens)."""

    identity: str | None  # user_identity.email: a user's email or a service principal's application id
    token_id: str | None
    day: date | None
    service_name: str
    action_name: str | None
    calls: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class AuditUsage:
    """One workspace's audit log since a time, aggregated by the warehouse."""

    workspace_id: str
    since: datetime
    calls: tuple[AuditCall, ...]


class UsageGateway(Protocol):
    """What the usage refresh needs of a workspace gateway (`SdkWorkspaceGateway` has it)."""

    name: str

    def audit_usage(
        self, warehouse_id: str, since: datetime, *, max_wait_seconds: float = 600.0
    ) -> AuditUsage:
        """Read system.access.audit since `since` on the SQL warehouse; GatewayError when the
        warehouse is missing, does not start in time, or the statement fails."""
        ...


# --- who uses a token (system.access.audit, bot.databricks.consumers) ---------------------------


@dataclass(frozen=True, slots=True)
class AgentUse:
    """Events of a token's login sessions from one user agent and one source address: over the
    lookback window (`day` None), or on one day of the recent window."""

    token_id: str
    user_agent: str | None
    source_ip: str | None
    calls: int
    first_seen: datetime | None
    last_seen: datetime | None
    day: date | None = None


@dataclass(frozen=True, slots=True)
class FailedLogins:
    """Failed `tokenLogin` events (status 401 or 403) naming one token, on one day, from one
    source address and user agent."""

    token_id: str
    day: date | None
    source_ip: str | None
    user_agent: str | None
    failures: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class AuditConsumers:
    """What a workspace's audit log says about who uses its tokens."""

    workspace_id: str
    since: datetime  # the lookback window's start
    recent_since: datetime  # the per-day window's start
    through: datetime | None  # the newest event in the window (None: the log has none)
    events: int  # events in the window, all identities
    uses: tuple[AgentUse, ...]  # per token, agent and address, over the lookback window
    daily: tuple[AgentUse, ...]  # the same per day, over the recent window
    failed_logins: tuple[FailedLogins, ...]


class ConsumersGateway(Protocol):
    """What the consumers refresh needs of a workspace gateway (`SdkWorkspaceGateway` has it)."""

    name: str

    def audit_consumers(
        self, warehouse_id: str, since: datetime, recent_since: datetime, *, max_wait_seconds: float = 600.0
    ) -> AuditConsumers:
        """Read who used each token from system.access.audit; GatewayError as `audit_usage`."""
        ...
