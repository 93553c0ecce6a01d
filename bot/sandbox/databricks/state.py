"""The state of a sandbox Databricks workspace: principals, credentials, tokens, secrets,
workspace-conf, warehouses, statements and the audit table, in memory behind one lock, with the
builders tests use and the readers that show it.

`DatabricksWorkspace` is the base of the sandbox's parts: each API (tokens.py, scim.py,
secrets_conf.py, statements.py, oauth.py) adds its handlers to it, and `DatabricksSandbox`
(sandbox.py) routes requests to them.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.sandbox.databricks.errors import not_found
from bot.sandbox.databricks.sql import normalise_audit_row
from bot.sandbox.server import Request

ADMIN_USER_ID = "1000000000000001"
NON_ADMIN_USER_ID = "1000000000000002"  # who `add_non_admin_token` credentials are, by default
NON_ADMIN_USER_NAME = "user@example.com"
DEFAULT_WORKSPACE_ID = 1234567890123456
DEFAULT_ACCOUNT_ID = "00000000-0000-4000-8000-0000000000aa"
TOKEN_QUOTA_PER_USER = 600
DEFAULT_TOKEN_LIFETIME = timedelta(days=730)
SECRET_MAX_BYTES = 128 * 1024
SECRET_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
SCIM_MAX_PAGE = 10_000
USER_SELECTED = "AUTOSCOPE_STATE_USER_SELECTED"
# Statement Execution, disposition INLINE: the whole result may hold at most 25 MiB; over it the
# statement ends FAILED with this BAD_REQUEST (databricks-sdk `service/sql.py` docstring of
# StatementExecutionAPI: "limited to 25 MiB and will fail when this limit is exceeded"; the message
# as users met it: databrickslabs/ucx issues #3447 and #4675). Databricks measures "internal storage
# metrics" that do not exactly match the payload (same docstring); the sandbox counts the bytes of
# the compact JSON of the rows.
INLINE_BYTE_LIMIT = 25 * 1024 * 1024
INLINE_LIMIT_MESSAGE = (
    "Inline byte limit exceeded. Statements executed with disposition=INLINE can have a result size "
    "of at most {limit} bytes. Please execute the statement with disposition=EXTERNAL_LINKS if you want "
    "to download the full result."
)
OAUTH_TOKEN_LIFETIME = 3600  # seconds: Databricks' OAuth access tokens live one hour (OAuth M2M docs)

SCIM_LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_USER_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
]
SCIM_SP_SCHEMAS = ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"]


def to_ms(value: datetime | int | float) -> int:
    """Milliseconds since the epoch from an aware datetime (or ms as is)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return int(value.timestamp() * 1000)
    return int(value)


def midnight_ms(value: datetime | int | float) -> int:
    """Midnight UTC of the day `value` falls on, in ms: Databricks' `last_used_day`."""
    day = datetime.fromtimestamp(to_ms(value) / 1000, UTC).date()
    return to_ms(datetime(day.year, day.month, day.day, tzinfo=UTC))


@dataclass
class Principal:
    """A SCIM user or service principal; `scim` is its SCIM representation."""

    id: str
    kind: str  # "user" or "sp"
    scim: dict[str, Any]

    @property
    def name(self) -> str:
        """`userName` for users, `applicationId` for service principals."""
        return self.scim["userName"] if self.kind == "user" else self.scim["applicationId"]


@dataclass
class Credential:
    principal_id: str
    admin: bool
    token_id: str | None = None  # set for tokens created through the API
    expires_at: datetime | None = None  # set for OAuth access tokens


@dataclass
class Statement:
    id: str
    state: str
    columns: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[list[list[str | None]]] = field(default_factory=list)
    truncated: bool = False
    error: dict[str, str] | None = None
    sql_state: str | None = None

    @property
    def row_count(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


@dataclass
class LostAnswer:
    """A request that is applied and whose answer is then lost: see `DatabricksSandbox.fail`."""

    method: str
    path: re.Pattern[str]
    times: int
    late_by: float  # 0: drop the connection; else answer after this many seconds

    def matches(self, request: Request) -> bool:
        return self.method in ("*", request.method) and bool(self.path.search(request.path))


def user_scim(id: str, user_name: str, display_name: str | None, active: bool) -> dict[str, Any]:
    return {
        "schemas": SCIM_USER_SCHEMAS,
        "id": id,
        "userName": user_name,
        "displayName": display_name or user_name,
        "active": active,
        "emails": [{"value": user_name, "primary": True, "type": "work"}],
    }


def _sp_scim(id: str, application_id: str, display_name: str | None, active: bool) -> dict[str, Any]:
    return {
        "schemas": SCIM_SP_SCHEMAS,
        "id": id,
        "applicationId": application_id,
        "displayName": display_name or application_id,
        "active": active,
    }


def numeric_id(value: str | int, what: str) -> str:
    text = str(value)
    if not text.isdigit():
        raise ValueError(f"{what} {value!r} must be numeric: Databricks ids are int64")
    return text


def token_json(info: Mapping[str, Any]) -> dict[str, Any]:
    """TokenInfo as served: unset fields and empty lists are left out, like Databricks does."""
    return {k: copy.copy(v) for k, v in info.items() if v is not None and v != []}


class DatabricksWorkspace:
    """What one workspace holds; builders may be called before the sandbox starts."""

    workspace_id: int
    account_id: str

    def __init__(self, admin_token: str, admin_user_name: str, clock: Callable[[], datetime] | None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._principals: dict[str, Principal] = {}
        self._credentials: dict[str, Credential] = {admin_token: Credential(ADMIN_USER_ID, admin=True)}
        self._tokens: dict[str, dict[str, Any]] = {}
        self._conf: dict[str, str | None] = {"maxTokenLifetimeDays": "730", "enableTokensConfig": "true"}
        self._scopes: dict[str, dict[str, str | bytes]] = {}
        self._secret_times: dict[tuple[str, str], int] = {}  # last_updated_timestamp, ms
        self._lost_answers: list[LostAnswer] = []
        self._warehouses: dict[str, str] = {}
        self._audit: list[dict[str, Any]] = []
        self._statements: dict[str, Statement] = {}
        self._oauth_clients: dict[str, str] = {}
        self._admin_ids = {ADMIN_USER_ID}  # principals whose new tokens are admin credentials
        self._next_id = 1000000000000100
        self._principals[ADMIN_USER_ID] = Principal(
            ADMIN_USER_ID, "user", user_scim(ADMIN_USER_ID, admin_user_name, "Sandbox Admin", True)
        )

    @property
    def url(self) -> str:
        """Where the workspace is served (the server's address, known once it listens)."""
        raise NotImplementedError

    # builders -----------------------------------------------------------------------------------
    def _new_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return str(self._next_id)

    def add_user(
        self,
        id: str | int | None = None,
        user_name: str = "",
        display_name: str | None = None,
        active: bool = True,
    ) -> str:
        """Add a SCIM user; `user_name` is the email. Returns the id."""
        id = numeric_id(id, "user id") if id is not None else self._new_id()
        if not user_name:
            raise ValueError("add_user needs user_name (the email)")
        with self._lock:
            self._principals[id] = Principal(id, "user", user_scim(id, user_name, display_name, active))
        return id

    def add_service_principal(
        self,
        id: str | int | None = None,
        application_id: str | None = None,
        display_name: str | None = None,
        active: bool = True,
    ) -> str:
        """Add a SCIM service principal. Returns the id."""
        id = numeric_id(id, "service principal id") if id is not None else self._new_id()
        application_id = application_id or str(uuid.uuid4())
        with self._lock:
            self._principals[id] = Principal(id, "sp", _sp_scim(id, application_id, display_name, active))
        return id

    def add_token(
        self,
        token_id: str | None = None,
        *,
        owner_id: str | int,
        created_by: str | int | None = None,
        comment: str = "",
        created_at: datetime | int | None = None,
        expires_at: datetime | int | None = None,
        last_used_at: datetime | int | None = None,
        scopes: Iterable[str] = (),
        inferred_scopes: Iterable[str] = (),
        autoscope_state: str | None = None,
    ) -> str:
        """Add a token as Databricks would list it (no usable value). Returns its id.

        `created_by` defaults to the owner; times are aware datetimes or ms since the epoch."""
        owner = numeric_id(owner_id, "owner_id")
        creator = numeric_id(created_by, "created_by") if created_by is not None else owner
        info = {
            "token_id": token_id or secrets.token_hex(32),
            "owner_id": int(owner),
            "created_by_id": int(creator),
            "created_by_username": None,
            "comment": comment,
            "creation_time": to_ms(created_at if created_at is not None else self._clock()),
            "expiry_time": -1 if expires_at is None else to_ms(expires_at),
            "last_used_day": None if last_used_at is None else midnight_ms(last_used_at),
            "scopes": list(scopes),
            "inferred_scopes": list(inferred_scopes),
            "backfill_scopes": [],
            "autoscope_state": autoscope_state,
            "workspace_id": self.workspace_id,
        }
        with self._lock:
            creator_principal = self._principals.get(creator)
            info["created_by_username"] = creator_principal.name if creator_principal else None
            self._tokens[info["token_id"]] = info
        return info["token_id"]

    def add_audit_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append rows to `system.access.audit` (see `normalise_audit_row` for the accepted forms)."""
        workspace_id = str(self.workspace_id)
        normalised = [
            normalise_audit_row(row, workspace_id=workspace_id, account_id=self.account_id) for row in rows
        ]
        with self._lock:
            self._audit.extend(normalised)

    def add_secret_scope(self, name: str) -> None:
        with self._lock:
            self._scopes.setdefault(name, {})

    def add_warehouse(self, id: str, state: str = "RUNNING") -> None:
        """Register a SQL warehouse; STOPPED ones start when a statement arrives (it answers PENDING)."""
        with self._lock:
            self._warehouses[id] = state

    def set_conf(self, key: str, value: str | None) -> None:
        with self._lock:
            self._conf[key] = None if value is None else str(value)

    def add_non_admin_token(self, token: str, user_id: str | int | None = None) -> None:
        """A credential that authenticates (as `user_id`, or a built-in user) but is not a workspace admin."""
        principal = numeric_id(user_id, "user_id") if user_id is not None else NON_ADMIN_USER_ID
        with self._lock:
            self._credentials[token] = Credential(principal, admin=False)

    def enable_oauth(self, client_id: str, client_secret: str) -> None:
        """Switch on OAuth M2M; the client's access tokens act as the service principal with that
        application id if there is one, else as the admin user, and are workspace admins."""
        with self._lock:
            self._oauth_clients[client_id] = client_secret

    # simulating Databricks' own actions ---------------------------------------------------------
    def mark_used(self, token_id: str, when: datetime | int | None = None) -> None:
        with self._lock:
            self._token(token_id)["last_used_day"] = midnight_ms(when if when is not None else self._clock())

    def revoke_token(self, token_id: str) -> None:
        """Databricks revokes a token (inactivity, clean-up): it disappears and stops authenticating."""
        with self._lock:
            self._token(token_id)
            self._delete_token(token_id)

    def set_autoscope(
        self,
        token_id: str,
        state: str | None,
        scopes: Iterable[str] | None = None,
        inferred_scopes: Iterable[str] | None = None,
    ) -> None:
        """Set the raw autoscope state (any string, served as is) and optionally the scopes."""
        with self._lock:
            info = self._token(token_id)
            info["autoscope_state"] = state
            if scopes is not None:
                info["scopes"] = list(scopes)
            if inferred_scopes is not None:
                info["inferred_scopes"] = list(inferred_scopes)

    # readers ------------------------------------------------------------------------------------
    def tokens(self) -> list[dict[str, Any]]:
        """Every token as the token-management API would serve it now."""
        with self._lock:
            return [token_json(info) for info in self._tokens.values()]

    def secrets(self) -> dict[tuple[str, str], str | bytes]:
        with self._lock:
            return {
                (scope, key): value
                for scope, entries in self._scopes.items()
                for key, value in entries.items()
            }

    def conf(self) -> dict[str, str | None]:
        with self._lock:
            return dict(self._conf)

    # helpers (called with the lock held) --------------------------------------------------------
    def _token(self, token_id: str) -> dict[str, Any]:
        info = self._tokens.get(token_id)
        if info is None:
            raise not_found(f"Token with id {token_id} does not exist.")
        return info

    def _delete_token(self, token_id: str) -> None:
        del self._tokens[token_id]
        for value in [v for v, c in self._credentials.items() if c.token_id == token_id]:
            del self._credentials[value]
