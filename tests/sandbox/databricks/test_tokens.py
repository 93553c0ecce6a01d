"""Tokens in the sandbox (tokens.py): authenticating with one, token management and the token API
of a user's own tokens, through the real SDK and plain HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.common.types.fieldmask import FieldMask
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceDoesNotExist,
)
from databricks.sdk.service.iam import AutoscopeState
from databricks.sdk.service.settings import TokenInfo

from bot.sandbox.databricks import ADMIN_USER_ID, DatabricksSandbox
from tests.support.databricks_sandbox import ALICE, BOB, ETL_APP, ETL_SP, calls, make_client, raw

CREATED = datetime(2025, 1, 10, 9, 30, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------
# authenticating with a token


def test_pat_client_sees_the_admin_as_current_user(client: WorkspaceClient) -> None:
    me = client.current_user.me()

    assert (me.id, me.user_name) == (ADMIN_USER_ID, "admin@example.com")
    assert client.config.auth_type == "pat"


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
