"""The Databricks sandbox is faithful enough that the real databricks-sdk works against it over HTTP."""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.common.types.fieldmask import FieldMask
from databricks.sdk.config import Config
from databricks.sdk.errors import (
    BadRequest,
    InternalError,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceDoesNotExist,
)
from databricks.sdk.service.iam import AutoscopeState
from databricks.sdk.service.settings import TokenInfo
from databricks.sdk.service.sql import StatementParameterListItem, StatementState

from bot.sandbox.databricks import ADMIN_USER_ID, DatabricksSandbox
from bot.sandbox.databricks.sql import SqlError, SqlParser, normalise_audit_row, run_query

ALICE, BOB, ETL_SP = "1001", "1002", "2001"
ETL_APP = "8b1c6f0e-etl0-4c1a-9d2e-000000000001"
WAREHOUSE = "abcdef0123456789"
CREATED = datetime(2025, 1, 10, 9, 30, tzinfo=UTC)
TM_TOKENS = r"^/api/2\.0/token-management/tokens$"


# ------------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture
def sandbox() -> Iterator[DatabricksSandbox]:
    """A started workspace with two users, one service principal and one warehouse."""
    with DatabricksSandbox(chunk_rows=4) as sandbox:
        sandbox.add_user(id=ALICE, user_name="alice@example.com", display_name="Alice")
        sandbox.add_user(id=BOB, user_name="bob@example.com", display_name="Bob")
        sandbox.add_service_principal(id=ETL_SP, application_id=ETL_APP, display_name="etl")
        sandbox.add_warehouse(WAREHOUSE)
        yield sandbox


def make_client(sandbox: DatabricksSandbox, token: str | None = None, **config: Any) -> WorkspaceClient:
    """A real SDK client with a short retry budget so that give-up tests stay fast."""
    config.setdefault("retry_timeout_seconds", 3)
    config.setdefault("http_timeout_seconds", 5)
    return WorkspaceClient(config=Config(host=sandbox.url, token=token or sandbox.admin_token, **config))


@pytest.fixture
def client(sandbox: DatabricksSandbox) -> WorkspaceClient:
    return make_client(sandbox)


def raw(sandbox: DatabricksSandbox, method: str, path: str, token: str | None = None, **kwargs: Any):
    """One plain HTTP call, to check exact JSON shapes the SDK's dataclasses would hide."""
    headers = {"Authorization": f"Bearer {token or sandbox.admin_token}"}
    return requests.request(method, sandbox.url + path, headers=headers, timeout=10, **kwargs)


def calls(sandbox: DatabricksSandbox, path_prefix: str) -> list:
    return [r for r in sandbox.requests if r.path.startswith(path_prefix)]


def audit_row(**overrides: Any) -> dict[str, Any]:
    """A `tokenLogin` audit row, the kind that carries a token id."""
    row = {
        "event_time": datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        "service_name": "accounts",
        "action_name": "tokenLogin",
        "user_identity": {"email": "alice@example.com"},
        "request_params": {"tokenId": "tok-a", "authenticationMethod": "API_EXT_PAT_TOKEN"},
        "response": {"statusCode": 200},
        "source_ip_address": "10.0.0.1",
        "user_agent": "curl/8.0",
    }
    row.update(overrides)
    return row


# ------------------------------------------------------------------------------------------------
# authentication


def test_pat_client_sees_the_admin_as_current_user(client: WorkspaceClient) -> None:
    me = client.current_user.me()

    assert (me.id, me.user_name) == (ADMIN_USER_ID, "admin@example.com")
    assert client.config.auth_type == "pat"


def test_well_known_config_describes_the_workspace_without_credentials(sandbox: DatabricksSandbox) -> None:
    response = requests.get(sandbox.url + "/.well-known/databricks-config", timeout=5)

    assert response.status_code == 200
    assert response.json() == {
        "oidc_endpoint": f"{sandbox.url}/oidc",
        "account_id": sandbox.account_id,
        "workspace_id": str(sandbox.workspace_id),
        "cloud": "AWS",
        "host_type": "workspace",
    }
    discovery = requests.get(sandbox.url + "/oidc/.well-known/oauth-authorization-server", timeout=5)
    assert discovery.json()["token_endpoint"] == f"{sandbox.url}/oidc/v1/token"


def test_clients_resolve_the_host_metadata_without_a_warning(
    sandbox: DatabricksSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.enable_oauth(ETL_APP, "etl-secret")

    with caplog.at_level(logging.DEBUG, logger="databricks.sdk"):
        pat = make_client(sandbox)
        oauth = WorkspaceClient(host=sandbox.url, client_id=ETL_APP, client_secret="etl-secret")
        assert oauth.current_user.me().user_name == ETL_APP

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [w for w in warnings if "host metadata" in w], warnings
    assert pat.config.workspace_id == str(sandbox.workspace_id) and pat.config.account_id == sandbox.account_id
    assert pat.get_workspace_id() == sandbox.workspace_id


def test_oauth_m2m_client_authenticates_end_to_end(sandbox: DatabricksSandbox) -> None:
    sandbox.enable_oauth(ETL_APP, "etl-secret")

    client = WorkspaceClient(host=sandbox.url, client_id=ETL_APP, client_secret="etl-secret")
    me = client.current_user.me()
    tokens = client.token_management.list()

    assert client.config.auth_type == "oauth-m2m"
    assert me.user_name == ETL_APP
    assert tokens == []
    token_call = calls(sandbox, "/oidc/v1/token")[0]
    assert token_call.form == {"grant_type": "client_credentials", "scope": "all-apis"}
    assert token_call.header("authorization").startswith("Basic ")


def test_oauth_access_tokens_expire_and_the_sdk_fetches_a_new_one(sandbox: DatabricksSandbox) -> None:
    # The SDK counts a token as expired 40 s before its `expires_in` (oauth.Token.expired): a
    # 45-second token is used for 5 s, then replaced.
    sandbox.oauth_token_lifetime = 45
    sandbox.enable_oauth(ETL_APP, "etl-secret")
    client = WorkspaceClient(host=sandbox.url, client_id=ETL_APP, client_secret="etl-secret")

    client.current_user.me()
    client.token_management.list()
    assert len(calls(sandbox, "/oidc/v1/token")) == 1
    time.sleep(6)
    client.current_user.me()

    grants = calls(sandbox, "/oidc/v1/token")
    assert len(grants) == 2
    used = {r.header("authorization") for r in calls(sandbox, "/api/2.0/")}
    assert len(used) == 2


def test_an_expired_oauth_access_token_is_refused_as_databricks_does(sandbox: DatabricksSandbox) -> None:
    sandbox.oauth_token_lifetime = 1
    sandbox.enable_oauth(ETL_APP, "etl-secret")
    grant = requests.post(sandbox.url + "/oidc/v1/token", auth=(ETL_APP, "etl-secret"), timeout=5,
                          data={"grant_type": "client_credentials", "scope": "all-apis"}).json()
    assert (grant["token_type"], grant["expires_in"]) == ("Bearer", 1)
    assert raw(sandbox, "GET", "/api/2.0/preview/scim/v2/Me", token=grant["access_token"]).ok

    time.sleep(1.2)
    answer = raw(sandbox, "GET", "/api/2.0/preview/scim/v2/Me", token=grant["access_token"])

    assert (answer.status_code, answer.json()) == (403, {"error_code": 403, "message": "JWT has expired"})


def test_oauth_with_a_wrong_secret_is_refused(sandbox: DatabricksSandbox) -> None:
    sandbox.enable_oauth(ETL_APP, "etl-secret")
    client = WorkspaceClient(host=sandbox.url, client_id=ETL_APP, client_secret="wrong")

    with pytest.raises(ValueError, match="invalid_client"):
        client.current_user.me()


def test_wrong_token_is_a_403_invalid_access_token_as_databricks_answers(sandbox: DatabricksSandbox) -> None:
    client = make_client(sandbox, token="dapi-not-a-real-token")

    with pytest.raises(PermissionDenied) as refused:  # the SDK maps the 403 by status
        client.token_management.list()
    assert refused.value.error_code == 403 and str(refused.value).startswith("Invalid access token.")
    answer = raw(sandbox, "GET", "/api/2.0/token-management/tokens", token="dapi-wrong")
    assert answer.status_code == 403
    assert answer.content == b'{"error_code": 403, "message": "Invalid access token."}'
    assert answer.headers["X-Databricks-Reason-Phrase"] == "Invalid access token."


def test_an_expired_token_is_refused_like_an_unknown_one(sandbox: DatabricksSandbox) -> None:
    value = make_client(sandbox).token_management.create_obo_token(ETL_APP, lifetime_seconds=1).token_value
    assert make_client(sandbox, token=value).current_user.me().user_name == ETL_APP

    time.sleep(1.2)
    answer = raw(sandbox, "GET", "/api/2.0/preview/scim/v2/Me", token=value)

    assert (answer.status_code, answer.json()) == (403, {"error_code": 403, "message": "Invalid access token."})


def test_a_request_without_credentials_is_unauthenticated(sandbox: DatabricksSandbox) -> None:
    answer = requests.get(sandbox.url + "/api/2.0/preview/scim/v2/Me", timeout=5)

    assert answer.status_code == 401 and answer.json()["error_code"] == "UNAUTHENTICATED"


def test_non_admin_token_is_denied_token_management_only(sandbox: DatabricksSandbox) -> None:
    sandbox.add_non_admin_token("dapi-plain-user", user_id=BOB)
    client = make_client(sandbox, token="dapi-plain-user")

    with pytest.raises(PermissionDenied) as denied:
        client.token_management.list()
    assert denied.value.error_code == "PERMISSION_DENIED"
    assert client.current_user.me().user_name == "bob@example.com"


# ------------------------------------------------------------------------------------------------
# token management


def test_list_serves_token_info_as_databricks_does(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    token_id = sandbox.add_token(
        owner_id=ALICE,
        comment="nightly job",
        created_at=CREATED,
        last_used_at=datetime(2025, 2, 3, 17, 45, tzinfo=UTC),
        scopes=["sql"],
        inferred_scopes=["sql", "jobs"],
        autoscope_state="AUTOSCOPE_STATE_RUNNING",
    )

    [info] = client.token_management.list()

    assert info.token_id == token_id and len(token_id) == 64 and int(token_id, 16) >= 0
    assert (info.owner_id, info.created_by_id, info.created_by_username) == (1001, 1001, "alice@example.com")
    assert info.creation_time == int(CREATED.timestamp() * 1000)
    assert info.expiry_time == -1
    assert info.last_used_day == int(datetime(2025, 2, 3, tzinfo=UTC).timestamp() * 1000)
    assert (info.scopes, info.inferred_scopes) == (["sql"], ["sql", "jobs"])
    assert info.autoscope_state == AutoscopeState.AUTOSCOPE_STATE_RUNNING
    assert info.workspace_id == sandbox.workspace_id


def test_empty_list_has_no_token_infos_key(sandbox: DatabricksSandbox) -> None:
    assert raw(sandbox, "GET", "/api/2.0/token-management/tokens").json() == {}


def test_list_filters_by_creator(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    by_alice = sandbox.add_token(owner_id=ALICE)
    by_bob = sandbox.add_token(owner_id=ETL_SP, created_by=BOB)

    assert [t.token_id for t in client.token_management.list(created_by_id=1001)] == [by_alice]
    assert [t.token_id for t in client.token_management.list(created_by_username="bob@example.com")] == [
        by_bob
    ]


def test_get_returns_one_token_and_404_for_an_unknown_id(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    token_id = sandbox.add_token(owner_id=ALICE, comment="ci")

    assert client.token_management.get(token_id).token_info.comment == "ci"
    with pytest.raises(ResourceDoesNotExist):
        client.token_management.get("0" * 64)


def test_patch_scopes_moves_autoscope_to_user_selected(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    token_id = sandbox.add_token(
        owner_id=ALICE, inferred_scopes=["sql"], autoscope_state="AUTOSCOPE_STATE_COMPLETED"
    )

    updated = client.token_management.update_token_management(
        token_id, TokenInfo(scopes=["sql", "jobs"]), FieldMask(["scopes"])
    )

    assert updated.scopes == ["sql", "jobs"]
    assert updated.autoscope_state == AutoscopeState.AUTOSCOPE_STATE_USER_SELECTED
    assert calls(sandbox, "/api/2.0/token-management/tokens/")[-1].json == {
        "token": {"scopes": ["sql", "jobs"]},
        "update_mask": "scopes",
    }
    assert sandbox.tokens()[0]["scopes"] == ["sql", "jobs"]


def test_patch_comment_leaves_autoscope_alone(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    token_id = sandbox.add_token(owner_id=ALICE, comment="old", autoscope_state="AUTOSCOPE_STATE_RUNNING")

    updated = client.token_management.update_token_management(
        token_id, TokenInfo(comment="new"), FieldMask(["comment"])
    )

    assert (updated.comment, updated.autoscope_state) == ("new", AutoscopeState.AUTOSCOPE_STATE_RUNNING)


@pytest.mark.parametrize("mask", [["expiry_time"], ["comment", "owner_id"], ["*"]])
def test_patch_mask_naming_another_field_is_invalid(
    sandbox: DatabricksSandbox, client: WorkspaceClient, mask: list[str]
) -> None:
    token_id = sandbox.add_token(owner_id=ALICE)

    with pytest.raises(InvalidParameterValue):
        client.token_management.update_token_management(token_id, TokenInfo(comment="x"), FieldMask(mask))


def test_delete_removes_the_token(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    token_id = sandbox.add_token(owner_id=ALICE)

    client.token_management.delete(token_id)

    assert sandbox.tokens() == []
    with pytest.raises(NotFound):
        client.token_management.delete(token_id)


def test_on_behalf_of_token_is_owned_by_the_service_principal(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    created = client.token_management.create_obo_token(ETL_APP, comment="etl", lifetime_seconds=3600)

    assert created.token_value.startswith("dapi") and len(created.token_value) == 36
    listed = client.token_management.get(created.token_info.token_id).token_info
    assert (listed.owner_id, listed.created_by_id, listed.comment) == (2001, int(ADMIN_USER_ID), "etl")
    assert listed.expiry_time - listed.creation_time == 3600 * 1000
    assert "token_value" not in raw(sandbox, "GET", "/api/2.0/token-management/tokens").text
    as_sp = make_client(sandbox, token=created.token_value)
    assert as_sp.current_user.me().user_name == ETL_APP


def test_on_behalf_of_unknown_application_is_not_found(client: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist):
        client.token_management.create_obo_token("no-such-app")


def test_own_tokens_create_list_delete(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    created = client.tokens.create(comment="laptop", lifetime_seconds=86400)

    assert [t.token_id for t in client.tokens.list()] == [created.token_info.token_id]
    assert sandbox.tokens()[0]["owner_id"] == int(ADMIN_USER_ID)
    client.tokens.delete(created.token_info.token_id)
    assert client.tokens.list() == []


def test_own_token_without_lifetime_lives_two_years(client: WorkspaceClient) -> None:
    info = client.tokens.create(comment="no lifetime").token_info

    assert info.expiry_time - info.creation_time == 730 * 86400 * 1000


def test_own_token_over_the_quota_is_refused(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    for _ in range(600):
        sandbox.add_token(owner_id=ADMIN_USER_ID)

    with pytest.raises(BadRequest) as refused:
        client.tokens.create(comment="one too many")
    assert refused.value.error_code == "QUOTA_EXCEEDED"


def test_created_token_authenticates_marks_itself_used_and_dies_when_revoked(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    created = client.token_management.create_obo_token(ETL_APP)
    as_sp = make_client(sandbox, token=created.token_value)

    as_sp.current_user.me()
    assert client.token_management.get(created.token_info.token_id).token_info.last_used_day is not None
    sandbox.revoke_token(created.token_info.token_id)
    with pytest.raises(PermissionDenied, match="Invalid access token"):
        as_sp.current_user.me()


def test_unknown_autoscope_state_is_served_as_is(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    token_id = sandbox.add_token(owner_id=ALICE)
    sandbox.set_autoscope(token_id, "AUTOSCOPE_STATE_FROM_THE_FUTURE", inferred_scopes=["sql"])

    body = raw(sandbox, "GET", f"/api/2.0/token-management/tokens/{token_id}").json()

    assert body["token_info"]["autoscope_state"] == "AUTOSCOPE_STATE_FROM_THE_FUTURE"
    assert client.token_management.get(token_id).token_info.autoscope_state is None


def test_builders_accept_ms_and_helpers_move_time_dependent_state(sandbox: DatabricksSandbox) -> None:
    expires = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    token_id = sandbox.add_token(owner_id=ALICE, created_at=CREATED, expires_at=expires)

    sandbox.mark_used(token_id, datetime(2025, 6, 7, 23, 59, tzinfo=UTC))

    [info] = sandbox.tokens()
    assert info["expiry_time"] == expires
    assert info["last_used_day"] == int(datetime(2025, 6, 7, tzinfo=UTC).timestamp() * 1000)
    with pytest.raises(ValueError, match="naive"):
        sandbox.add_token(owner_id=ALICE, created_at=datetime(2025, 1, 1))


# ------------------------------------------------------------------------------------------------
# SCIM


def test_sdk_pages_through_25000_users_and_stops(sandbox: DatabricksSandbox) -> None:
    for n in range(25_000):
        sandbox.add_user(id=str(3_000_000 + n), user_name=f"user{n}@example.com")
    client = make_client(sandbox)

    ids = {user.id for user in client.users.list(attributes="id,userName")}

    assert len(ids) == 25_000 + 3  # plus alice, bob and the admin
    assert {str(3_000_000 + n) for n in range(25_000)} <= ids
    pages = calls(sandbox, "/api/2.0/preview/scim/v2/Users")
    assert [int(r.query["startIndex"][0]) for r in pages] == [1, 10_001, 20_001, 25_004]


def test_scim_filters(client: WorkspaceClient) -> None:
    assert [u.id for u in client.users.list(filter='userName eq "Alice@Example.com"')] == [ALICE]
    assert [u.user_name for u in client.users.list(filter=f'id eq "{BOB}"')] == ["bob@example.com"]
    assert [sp.id for sp in client.service_principals.list(filter=f'applicationId eq "{ETL_APP}"')] == [
        ETL_SP
    ]
    assert list(client.users.list(filter='userName eq "nobody@example.com"')) == []


def test_scim_get_by_id_and_scim_error_for_unknown(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    assert client.users.get(ALICE).display_name == "Alice"
    assert client.service_principals.get(ETL_SP).application_id == ETL_APP
    with pytest.raises(NotFound):
        client.users.get("999")
    body = raw(sandbox, "GET", "/api/2.0/preview/scim/v2/Users/999").json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "404"


def test_scim_list_shape_attributes_and_empty_page(sandbox: DatabricksSandbox) -> None:
    page = raw(
        sandbox,
        "GET",
        "/api/2.0/preview/scim/v2/Users",
        params={"attributes": "userName", "startIndex": 2, "count": 1},
    ).json()
    past_the_end = raw(sandbox, "GET", "/api/2.0/preview/scim/v2/Users", params={"startIndex": 50}).json()

    assert page["totalResults"] == 3 and page["startIndex"] == 2 and page["itemsPerPage"] == 1
    assert set(page["Resources"][0]) == {"id", "userName", "schemas"}
    assert "Resources" not in past_the_end


def test_scim_bad_filter_is_a_scim_400(sandbox: DatabricksSandbox) -> None:
    response = raw(sandbox, "GET", "/api/2.0/preview/scim/v2/Users", params={"filter": "userName like x"})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


# ------------------------------------------------------------------------------------------------
# secrets and workspace-conf


def test_put_secret_and_list_scopes(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.add_secret_scope("tokenbot")

    client.secrets.put_secret("tokenbot", "etl.token-1_a", string_value="dapi123")

    assert sandbox.secrets() == {("tokenbot", "etl.token-1_a"): "dapi123"}
    assert [s.name for s in client.secrets.list_scopes()] == ["tokenbot"]


def test_list_secrets_gives_each_key_the_time_it_was_last_written(sandbox: DatabricksSandbox) -> None:
    sandbox.add_secret_scope("tokenbot")
    client = make_client(sandbox)
    client.secrets.put_secret("tokenbot", "a", string_value="1")
    client.secrets.put_secret("tokenbot", "b", string_value="2")
    first = raw(sandbox, "GET", "/api/2.0/secrets/list", params={"scope": "tokenbot"}).json()
    time.sleep(0.01)

    client.secrets.put_secret("tokenbot", "b", string_value="3")

    second = raw(sandbox, "GET", "/api/2.0/secrets/list", params={"scope": "tokenbot"}).json()
    times = [{s["key"]: s["last_updated_timestamp"] for s in body["secrets"]} for body in (first, second)]
    assert set(second["secrets"][0]) == {"key", "last_updated_timestamp"}
    assert times[1]["a"] == times[0]["a"] and times[1]["b"] > times[0]["b"]
    assert [s.key for s in client.secrets.list_secrets("tokenbot")] == ["a", "b"]


@pytest.mark.parametrize("key", ["has space", "slash/key", "k" * 129, "ünicode"])
def test_put_secret_with_an_invalid_key_is_refused(
    sandbox: DatabricksSandbox, client: WorkspaceClient, key: str
) -> None:
    sandbox.add_secret_scope("tokenbot")

    with pytest.raises(InvalidParameterValue):
        client.secrets.put_secret("tokenbot", key, string_value="x")


def test_put_secret_over_128_kb_is_refused(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.add_secret_scope("tokenbot")

    client.secrets.put_secret("tokenbot", "max", string_value="x" * 128 * 1024)
    with pytest.raises(InvalidParameterValue):
        client.secrets.put_secret("tokenbot", "over", string_value="x" * (128 * 1024 + 1))


def test_put_secret_into_an_unknown_scope_is_not_found(client: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist):
        client.secrets.put_secret("missing", "key", string_value="x")


def test_workspace_conf_defaults_and_set_conf(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    assert client.workspace_conf.get_status(keys="maxTokenLifetimeDays,enableTokensConfig") == {
        "maxTokenLifetimeDays": "730",
        "enableTokensConfig": "true",
    }

    sandbox.set_conf("maxTokenLifetimeDays", 90)

    assert client.workspace_conf.get_status(keys="maxTokenLifetimeDays") == {"maxTokenLifetimeDays": "90"}
    with pytest.raises(InvalidParameterValue):
        client.tokens.create(lifetime_seconds=91 * 86400)


# ------------------------------------------------------------------------------------------------
# statement execution


def execute(client: WorkspaceClient, sql: str, **params: str):
    parameters = [StatementParameterListItem(name=k, value=v) for k, v in params.items()]
    return client.statement_execution.execute_statement(
        statement=sql, warehouse_id=WAREHOUSE, parameters=parameters, wait_timeout="30s"
    )


def all_rows(client: WorkspaceClient, response) -> list[list[str | None]]:
    """Every row, following next_chunk_index as a gateway would."""
    rows, result = list(response.result.data_array or []), response.result
    while result.next_chunk_index is not None:
        result = client.statement_execution.get_statement_result_chunk_n(
            response.statement_id, result.next_chunk_index
        )
        rows.extend(result.data_array or [])
    return rows


def test_statement_with_parameters_returns_rows_over_several_chunks(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    sandbox.add_audit_rows(
        audit_row(event_time=start + timedelta(hours=n), request_params={"tokenId": f"tok-{n:02d}"})
        for n in range(10)
    )
    sandbox.add_audit_rows([audit_row(action_name="getTable", event_time=start)])

    response = execute(
        client,
        "SELECT request_params['tokenId'] AS token_id, event_time, response.statusCode "
        "FROM system.access.audit WHERE action_name = :action AND event_time >= :since "
        "ORDER BY event_time",
        action="tokenLogin",
        since="2025-03-01T02:00:00Z",
    )

    assert response.status.state == StatementState.SUCCEEDED
    assert response.manifest.total_chunk_count == 2 and response.manifest.total_row_count == 8
    assert [c.name for c in response.manifest.schema.columns] == ["token_id", "event_time", "statusCode"]
    rows = all_rows(client, response)
    assert [r[0] for r in rows] == [f"tok-{n:02d}" for n in range(2, 10)]
    assert rows[0][1:] == ["2025-03-01T02:00:00.000Z", "200"]
    assert len(calls(sandbox, f"/api/2.0/sql/statements/{response.statement_id}/result/chunks/")) == 1


INLINE_LIMIT_MESSAGE = (
    "Inline byte limit exceeded. Statements executed with disposition=INLINE can have a result size "
    "of at most {limit} bytes. Please execute the statement with disposition=EXTERNAL_LINKS if you want "
    "to download the full result."
)


def test_a_result_over_the_inline_limit_fails_as_databricks_does(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    assert sandbox.inline_byte_limit == 25 * 1024 * 1024
    sandbox.inline_byte_limit = 2000
    start = datetime(2025, 3, 1, tzinfo=UTC)
    sandbox.add_audit_rows(audit_row(event_time=start + timedelta(minutes=n)) for n in range(100))

    raw_rows = execute(client, "SELECT event_time, user_identity.email, user_agent FROM system.access.audit")
    per_day = execute(client, "SELECT event_date, count(*) FROM system.access.audit GROUP BY event_date")

    assert raw_rows.status.state == StatementState.FAILED
    assert raw_rows.status.error.error_code.value == "BAD_REQUEST"
    assert raw_rows.status.error.message == INLINE_LIMIT_MESSAGE.format(limit=2000)
    assert raw_rows.manifest is None and raw_rows.result is None
    assert per_day.status.state == StatementState.SUCCEEDED
    assert per_day.result.data_array == [["2025-03-01", "100"]]


def test_byte_limit_truncates_instead_of_failing(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.inline_byte_limit = 2000
    start = datetime(2025, 3, 1, tzinfo=UTC)
    sandbox.add_audit_rows(audit_row(event_time=start + timedelta(minutes=n)) for n in range(100))

    response = client.statement_execution.execute_statement(
        statement="SELECT event_time FROM system.access.audit ORDER BY event_time",
        warehouse_id=WAREHOUSE, wait_timeout="30s", byte_limit=500,
    )

    assert response.status.state == StatementState.SUCCEEDED
    assert response.manifest.truncated is True
    rows = all_rows(client, response)
    assert 0 < len(rows) == response.manifest.total_row_count < 100
    assert rows[0] == ["2025-03-01T00:00:00.000Z"]


def test_group_by_with_count_and_max(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.add_audit_rows(
        [
            audit_row(event_time=datetime(2025, 3, 1, tzinfo=UTC)),
            audit_row(event_time=datetime(2025, 3, 5, tzinfo=UTC)),
            audit_row(request_params={"tokenId": "tok-b"}, user_identity={"email": "bob@example.com"}),
            audit_row(request_params={"authenticationMethod": "API_INT_PAT_TOKEN"}),
        ]
    )

    response = execute(
        client,
        "SELECT request_params.tokenId, user_identity.email, count(*) AS uses, "
        "max(event_time) FROM system.access.audit "
        "WHERE request_params.tokenId IS NOT NULL AND service_name IN ('accounts') "
        "GROUP BY request_params.tokenId, user_identity.email ORDER BY uses DESC",
    )

    assert [c.name for c in response.manifest.schema.columns] == [
        "tokenId",
        "email",
        "uses",
        "max(event_time)",
    ]
    assert response.result.data_array == [
        ["tok-a", "alice@example.com", "2", "2025-03-05T00:00:00.000Z"],
        ["tok-b", "bob@example.com", "1", "2025-03-01T12:00:00.000Z"],
    ]


def test_empty_result_has_no_data_array(client: WorkspaceClient) -> None:
    response = execute(client, "SELECT event_id FROM system.access.audit WHERE action_name = 'none'")

    assert response.status.state == StatementState.SUCCEEDED
    assert response.manifest.total_row_count == 0 and response.result.data_array is None


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        (
            "SELECT event_id FROM system.access.audit WHERE action_name = 'a' OR action_name = 'b'",
            "OR at position",
        ),
        ("SELECT lower(action_name) FROM system.access.audit", "lower()"),
        ("SELECT * FROM system.access.audit", "SELECT *"),
        ("SELECT DISTINCT action_name FROM system.access.audit", "DISTINCT"),
        ("SELECT event_id FROM system.access.audit JOIN system.access.audit", "JOIN of a table"),
        (
            "SELECT a.event_id FROM system.access.audit a RIGHT JOIN system.access.audit b ON a.x = b.x",
            "'RIGHT'",
        ),
        ("SELECT b.event_id FROM system.access.audit a", "neither a table alias nor a column"),
        (
            "SELECT session_id FROM system.access.audit LEFT JOIN "
            "(SELECT session_id FROM system.access.audit) t ON session_id = t.session_id",
            "AMBIGUOUS_REFERENCE",
        ),
        ("SELECT event_id FROM system.billing.usage", "TABLE_OR_VIEW_NOT_FOUND"),
        ("SELECT no_such_column FROM system.access.audit", "UNRESOLVED_COLUMN"),
        ("SELECT event_id FROM system.access.audit WHERE event_time > :since", "UNBOUND_SQL_PARAMETER"),
        ("SELECT action_name, count(*) FROM system.access.audit", "MISSING_AGGREGATION"),
        ("SELECT event_id FROM system.access.audit WHERE event_date >= current_date()", "current_date"),
    ],
)
def test_unsupported_or_wrong_sql_fails_with_a_message(client: WorkspaceClient, sql: str, named: str) -> None:
    response = execute(client, sql)

    assert response.status.state == StatementState.FAILED
    assert named in response.status.error.message
    assert response.result is None


def test_unknown_warehouse_is_not_found(client: WorkspaceClient) -> None:
    with pytest.raises(NotFound):
        client.statement_execution.execute_statement(
            statement="SELECT event_id FROM system.access.audit", warehouse_id="nope"
        )


def test_stopped_warehouse_answers_pending_then_succeeds(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    sandbox.add_warehouse("cold", state="STOPPED")
    sandbox.add_audit_rows([audit_row()])

    pending = client.statement_execution.execute_statement(
        statement="SELECT count(*) FROM system.access.audit", warehouse_id="cold", wait_timeout="5s"
    )
    done = client.statement_execution.get_statement(pending.statement_id)

    assert pending.status.state == StatementState.PENDING
    assert (done.status.state, done.result.data_array) == (StatementState.SUCCEEDED, [["1"]])


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("response.statusCode = '403'", ["e2"]),
        ("response.statusCode <> 403", ["e1"]),
        ("user_agent IS NULL", ["e2"]),
        ("event_id NOT IN ('e1', NULL)", []),
        ("event_date = '2025-03-02'", ["e2"]),
        ("event_time < '2025-03-02'", ["e1"]),
    ],
)
def test_where_predicates_follow_sql_semantics(where: str, expected: list[str]) -> None:
    rows = [
        {
            "event_id": "e1",
            "event_time": datetime(2025, 3, 1, tzinfo=UTC),
            "user_agent": "curl",
            "response": {"statusCode": 200},
        },
        {"event_id": "e2", "event_time": datetime(2025, 3, 2, tzinfo=UTC), "response": {"statusCode": 403}},
    ]
    table = [normalise_audit_row(row, workspace_id="1", account_id="acc") for row in rows]
    query = SqlParser(f"SELECT event_id FROM system.access.audit WHERE {where}").parse()  # noqa: S608 - test SQL

    assert [r[0] for r in run_query(query, table, {})] == expected


def test_parser_names_the_unsupported_construct() -> None:
    with pytest.raises(SqlError, match=r"HAVING on something other than an aggregate is not supported"):
        SqlParser(
            "SELECT action_name, count(*) FROM system.access.audit GROUP BY action_name HAVING action_name = 'x'"
        ).parse()


def test_a_left_join_on_a_grouped_sub_query_ties_each_event_to_its_session_token() -> None:
    def event(session: str | None, action: str, token: str | None = None) -> dict[str, Any]:
        params = {"tokenId": token} if token else None
        return {"event_time": datetime(2025, 3, 1, tzinfo=UTC), "session_id": session, "action_name": action,
                "service_name": "accounts" if token else "jobs", "request_params": params}

    rows = [
        event("s1", "tokenLogin", "tok-a"), event("s1", "runNow"), event("s1", "runNow"),
        event("s2", "tokenLogin", "tok-a"), event("s2", "tokenLogin", "tok-b"), event("s2", "get"),
        event("s3", "list"), event(None, "list"),
    ]
    table = [normalise_audit_row(row, workspace_id="1", account_id="acc") for row in rows]
    query = SqlParser(
        "SELECT a.action_name, t.token_id, count(*) AS calls "
        "FROM system.access.audit AS a LEFT JOIN ("
        "  SELECT session_id, min(request_params['tokenId']) AS token_id FROM system.access.audit"
        "  WHERE action_name = 'tokenLogin' GROUP BY session_id"
        "  HAVING count(DISTINCT request_params['tokenId']) = 1"
        ") t ON a.session_id = t.session_id "
        "WHERE a.action_name != 'tokenLogin' GROUP BY a.action_name, t.token_id ORDER BY action_name"
    ).parse()

    assert run_query(query, table, {}) == [["get", None, 1], ["list", None, 2], ["runNow", "tok-a", 2]]


# ------------------------------------------------------------------------------------------------
# faults and retries


def test_sdk_rides_over_a_429_with_retry_after(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.add_token(owner_id=ALICE)
    sandbox.fail("GET", TM_TOKENS, 429, retry_after=1)

    assert len(client.token_management.list()) == 1
    attempts = calls(sandbox, "/api/2.0/token-management/tokens")
    assert len(attempts) == 2 and attempts[1].time - attempts[0].time >= 1


def test_sdk_rides_over_a_503(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.fail("GET", TM_TOKENS, 503, retry_after=1)

    assert client.token_management.list() == []
    assert len(calls(sandbox, "/api/2.0/token-management/tokens")) == 2


def test_persistent_503_makes_the_sdk_give_up_within_its_timeout(sandbox: DatabricksSandbox) -> None:
    client = make_client(sandbox, retry_timeout_seconds=2)
    sandbox.fail("GET", TM_TOKENS, 503, times=1000, retry_after=1)
    began = time.monotonic()

    with pytest.raises(TimeoutError):
        client.token_management.list()

    # the budget plus one last sleep and its jitter, and room for a busy machine (1,000 failures to ride)
    assert time.monotonic() - began < 2 + 2.5 + 10


def test_a_500_is_not_retried(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.fail("GET", TM_TOKENS, 500, times=5)

    with pytest.raises(InternalError):
        client.token_management.list()
    assert len(calls(sandbox, "/api/2.0/token-management/tokens")) == 1


def test_a_dropped_connection_is_retried(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.fail("GET", TM_TOKENS, 0, drop=True)

    assert client.token_management.list() == []
    assert len(calls(sandbox, "/api/2.0/token-management/tokens")) == 2


OBO_TOKENS = r"/token-management/on-behalf-of/tokens$"


def test_a_create_whose_answer_is_dropped_is_applied_and_the_sdk_retry_makes_a_second_token(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    sandbox.fail("POST", OBO_TOKENS, apply_then_drop=True)

    created = client.token_management.create_obo_token(ETL_APP, comment="etl", lifetime_seconds=3600)

    assert len(calls(sandbox, "/api/2.0/token-management/on-behalf-of")) == 2
    etl_tokens = [t["token_id"] for t in sandbox.tokens() if t["owner_id"] == int(ETL_SP)]
    assert len(etl_tokens) == 2 and created.token_info.token_id in etl_tokens


def test_writes_whose_answers_keep_being_lost_are_applied_and_the_sdk_gives_up(
    sandbox: DatabricksSandbox,
) -> None:
    client = make_client(sandbox, retry_timeout_seconds=2)
    sandbox.add_token("t1", owner_id=ALICE, scopes=["all-apis"])
    sandbox.add_token("t2", owner_id=ALICE)
    sandbox.add_secret_scope("tokenbot")
    for method, path in (("DELETE", "/tokens/t2$"), ("PATCH", "/tokens/t1$"), ("POST", "/secrets/put$")):
        sandbox.fail(method, path, apply_then_drop=True, times=100)

    with pytest.raises(TimeoutError):
        client.token_management.delete("t2")
    with pytest.raises(TimeoutError):
        client.token_management.update_token_management("t1", TokenInfo(scopes=["sql"]), FieldMask(["scopes"]))
    with pytest.raises(TimeoutError):
        client.secrets.put_secret("tokenbot", "key", string_value="dapi-new")

    assert {t["token_id"]: t["scopes"] for t in sandbox.tokens()} == {"t1": ["sql"]}
    assert sandbox.secrets() == {("tokenbot", "key"): "dapi-new"}


def test_an_answer_later_than_the_client_timeout_is_applied_and_retried(sandbox: DatabricksSandbox) -> None:
    client = make_client(sandbox, http_timeout_seconds=1)
    sandbox.add_secret_scope("tokenbot")
    sandbox.fail("POST", r"/secrets/put$", answer_late_by=2)

    client.secrets.put_secret("tokenbot", "key", string_value="dapi-new")

    assert len(calls(sandbox, "/api/2.0/secrets/put")) == 2
    assert sandbox.secrets() == {("tokenbot", "key"): "dapi-new"}


def test_latency_delays_the_answer(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.fail("GET", TM_TOKENS, 0, delay=0.3)
    began = time.monotonic()

    assert client.token_management.list() == []
    assert time.monotonic() - began >= 0.3


def test_down_then_up(sandbox: DatabricksSandbox) -> None:
    client = make_client(sandbox, retry_timeout_seconds=1)
    sandbox.down()

    with pytest.raises(TimeoutError):
        client.token_management.list()
    sandbox.up()
    assert client.token_management.list() == []


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "RESOURCE_DOES_NOT_EXIST"),
        (429, "REQUEST_LIMIT_EXCEEDED"),
        (500, "INTERNAL_ERROR"),
        (503, "TEMPORARILY_UNAVAILABLE"),
    ],
)
def test_fault_bodies_are_databricks_errors(sandbox: DatabricksSandbox, status: int, code: str) -> None:
    sandbox.fail("GET", TM_TOKENS, status, retry_after=2 if status in (429, 503) else None)

    response = raw(sandbox, "GET", "/api/2.0/token-management/tokens")

    assert response.status_code == status
    assert response.json()["error_code"] == code and response.json()["message"]
    assert ("Retry-After" in response.headers) == (status in (429, 503))


def test_unknown_route_is_endpoint_not_found(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    with pytest.raises(NotFound) as missing:
        client.api_client.do("GET", "/api/2.0/clusters/list")

    assert missing.value.error_code == "ENDPOINT_NOT_FOUND"


def test_holds_200_concurrent_connections(sandbox: DatabricksSandbox) -> None:
    port = int(sandbox.url.rsplit(":", 1)[1])
    barrier = threading.Barrier(200, timeout=20)
    statuses: list[int] = []

    def one_call() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        connection.connect()
        barrier.wait()  # all 200 connections are open before any request is sent
        connection.request(
            "GET", "/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {sandbox.admin_token}"}
        )
        statuses.append(connection.getresponse().status)
        connection.close()

    threads = [threading.Thread(target=one_call) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 200


def test_two_sandboxes_keep_separate_workspaces() -> None:
    with DatabricksSandbox(workspace_id=1) as first, DatabricksSandbox(workspace_id=2) as second:
        first.add_token(owner_id=ALICE)

        assert len(make_client(first).token_management.list()) == 1
        assert make_client(second).token_management.list() == []
        assert first.url != second.url
