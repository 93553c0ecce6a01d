"""Secrets and workspace-conf in the sandbox (secrets_conf.py), with Databricks' limits."""

from __future__ import annotations

import time

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist

from bot.sandbox.databricks import DatabricksSandbox
from tests.support.databricks_sandbox import make_client, raw


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
