"""Test helpers for issue 8: auto-scoping events (builders, a signed webhook client), audit-log rows
for the Databricks sandbox, and the TOML switch that points a workspace at its audit warehouse."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta
from typing import Any

from bot.webhook import sign

SECRET = "whsec-test-secret"
WAREHOUSE = "wh-audit"


# ---------------------------------------------------------------------------------------------
# events


def event(**fields: Any) -> dict[str, Any]:
    """An `autoscope.reminder` event for `tok-observed` in prod; fields override (None removes)."""
    body: dict[str, Any] = {
        "id": f"evt-{uuid.uuid4().hex[:12]}",
        "type": "autoscope.reminder",
        "workspace": "prod",
        "token_id": "tok-observed",
        "enforcement_at": "2030-01-15T00:00:00Z",
        "inferred_scopes": ["sql"],
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def enforced(**fields: Any) -> dict[str, Any]:
    return event(**{"type": "autoscope.enforced", "scopes": ["sql"], **fields})


def gateways(world):
    """The gateway factory tokenbot builds from the world's settings (real SDK, sandbox servers)."""
    from bot.databricks.gateway import gateway_factory

    settings = world.settings
    return gateway_factory(settings.workspaces, settings.databricks)


def post_event(
    url: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str | None = SECRET,
    timestamp: float | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any] | str]:
    """POST to the webhook, signed with `secret` (None: unsigned) unless `signature` is given."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    stamp = str(int(timestamp if timestamp is not None else time.time()))
    sent = {"Content-Type": "application/json"}
    if secret is not None:
        sent["X-Tokenbot-Timestamp"] = stamp
        sent["X-Tokenbot-Signature"] = signature or sign(secret, stamp, body)
    sent.update(headers or {})
    sent = {name: value for name, value in sent.items() if value is not None}
    request = urllib.request.Request(url, data=body, method="POST", headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


# ---------------------------------------------------------------------------------------------
# the audit log


def login(when: datetime, token_id: str, email: str, session: str) -> dict[str, Any]:
    """The `accounts` `tokenLogin` event a token's use makes: the only event naming the token."""
    return {
        "event_time": when,
        "service_name": "accounts",
        "action_name": "tokenLogin",
        "user_identity.email": email,
        "session_id": session,
        "request_params": {"tokenId": token_id, "authenticationMethod": "API_PAT_TOKEN"},
        "response.statusCode": 200,
    }


def call(when: datetime, service: str, action: str, email: str, session: str | None = None) -> dict[str, Any]:
    return {
        "event_time": when,
        "service_name": service,
        "action_name": action,
        "user_identity.email": email,
        "session_id": session,
        "response.statusCode": 200,
    }


def token_use(when: datetime, token_id: str, email: str, service: str, action: str) -> list[dict[str, Any]]:
    """One use of a token: its login, then the call in the same session."""
    session = f"s-{uuid.uuid4().hex[:10]}"
    return [
        login(when, token_id, email, session),
        call(when + timedelta(seconds=1), service, action, email, session),
    ]


def quarterly_job(now: datetime, token_id: str, email: str, days: int = 90) -> list[dict[str, Any]]:
    """Daily SQL queries for `days` days, and one `jobs` run 80 days ago: the job auto-scoping misses."""
    rows = []
    for day in range(1, days + 1):
        rows += token_use(
            now - timedelta(days=day, hours=3), token_id, email, "databrickssql", "executeStatement"
        )
    rows += token_use(now - timedelta(days=80), token_id, email, "jobs", "runNow")
    return rows


def with_audit_warehouse(config_path, workspace: str, warehouse_id: str = WAREHOUSE) -> None:
    """Give `workspace` an `audit_warehouse_id` in the TOML file the test's settings read."""
    variable = f'token_env = "{workspace.upper()}_DATABRICKS_TOKEN"\n'
    text = config_path.read_text()
    assert variable in text, f"{workspace} is not in {config_path}"
    config_path.write_text(text.replace(variable, variable + f'audit_warehouse_id = "{warehouse_id}"\n'))


# ---------------------------------------------------------------------------------------------
# the quarterly-job world

OWNER = "U0QUINN"
EMAIL = "quinn@example.com"
QUARTERLY = "tok-quarterly"


def quarterly_world(tmp_path, monkeypatch, database_url, policy=None):
    """prod reads its audit log on a warehouse; auto-scoping reached prod 25 days ago, so Quinn's
    200-day-old token is 5 days from enforcement and auto-scoping saw only its last 25 days.
    Returns (world, stack) as `tests.world.make_world` does."""
    from bot import clock
    from tests.support.world import POLICY, make_world

    rollout = (clock.now() - timedelta(days=25)).date().isoformat()
    policy = policy or POLICY + f"autoscope_rollout_date = {rollout}\n"
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy=policy)
    with_audit_warehouse(world.org.config_path, "prod")
    prod = world.org["prod"]
    prod.add_warehouse(WAREHOUSE)
    world.slack.add_user(id=OWNER, email=EMAIL, name="Quinn")
    world.owner_id = prod.add_user(user_name=EMAIL, display_name="Quinn")
    prod.add_token(
        token_id=QUARTERLY,
        owner_id=world.owner_id,
        comment="finance quarter close",
        created_at=clock.now() - timedelta(days=200),
        last_used_at=clock.now(),
        expires_at=clock.now() + timedelta(days=365),
        scopes=["all-apis"],
        inferred_scopes=["sql"],
        autoscope_state="AUTOSCOPE_STATE_RUNNING",
    )
    world.sync()
    return world, stack


def refresh_usage(world, **options):
    """`usage.refresh_usage`; results by workspace."""
    from bot.services import usage

    return _refreshed(world, usage.refresh_usage, options)


def refresh_audit(world, **options):
    """The whole audit read, as `tokenbot usage refresh` and the daily job run it: API usage, who
    uses each token, misuse findings recorded; results by workspace."""
    from bot.services import audit_read

    return _refreshed(world, audit_read.refresh_all, options)


def _refreshed(world, refresh, options):
    from bot import clock
    from bot.databricks.gateway import gateway_factory

    settings = world.settings
    # An audit read is a few statements, each polled: on a loaded machine the sandbox's answers
    # can outlast the worlds' 3 s retry budget, which the faults these tests inject never need.
    patient = settings.databricks.model_copy(update={"retry_timeout_seconds": 30, "http_timeout_seconds": 15})
    results = refresh(
        engine=world.engine,
        settings=settings,
        gateway_for=gateway_factory(settings.workspaces, patient),
        now=clock.now(),
        **options,
    )
    return {result.workspace: result for result in results}
