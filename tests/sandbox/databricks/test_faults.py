"""Injected faults and the server under them (sandbox.py): the SDK's retries and give-ups, lost
answers that were applied, Databricks' error bodies, unknown routes and many connections."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.common.types.fieldmask import FieldMask
from databricks.sdk.errors import InternalError, NotFound
from databricks.sdk.service.settings import TokenInfo

from bot.sandbox.databricks import DatabricksSandbox
from tests.support.databricks_sandbox import ALICE, ETL_APP, ETL_SP, calls, make_client, raw

TM_TOKENS = r"^/api/2\.0/token-management/tokens$"


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
