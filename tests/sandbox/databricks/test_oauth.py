"""OAuth M2M as the sandbox serves it (oauth.py): host metadata, OIDC discovery, the
client-credentials grant and the life of its access tokens, with the real SDK."""

from __future__ import annotations

import logging
import time

import pytest
import requests
from databricks.sdk import WorkspaceClient

from bot.sandbox.databricks import DatabricksSandbox
from tests.support.databricks_sandbox import ETL_APP, calls, make_client, raw


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
