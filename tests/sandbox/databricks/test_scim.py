"""SCIM in the sandbox (scim.py): paging, filters, attribute projection and SCIM's errors."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound

from bot.sandbox.databricks import DatabricksSandbox
from tests.support.databricks_sandbox import ALICE, BOB, ETL_APP, ETL_SP, calls, make_client, raw


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
