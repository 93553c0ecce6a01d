"""Test helpers for the Databricks sandbox's own tests: the people of the standard workspace, a real
SDK client with a short retry budget, and plain HTTP calls for the exact JSON shapes."""

from __future__ import annotations

from typing import Any

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from bot.sandbox.databricks import DatabricksSandbox

ALICE, BOB, ETL_SP = "1001", "1002", "2001"
ETL_APP = "8b1c6f0e-etl0-4c1a-9d2e-000000000001"
WAREHOUSE = "abcdef0123456789"


def make_client(sandbox: DatabricksSandbox, token: str | None = None, **config: Any) -> WorkspaceClient:
    """A real SDK client with a short retry budget so that give-up tests stay fast."""
    config.setdefault("retry_timeout_seconds", 3)
    config.setdefault("http_timeout_seconds", 5)
    return WorkspaceClient(config=Config(host=sandbox.url, token=token or sandbox.admin_token, **config))


def raw(sandbox: DatabricksSandbox, method: str, path: str, token: str | None = None, **kwargs: Any):
    """One plain HTTP call, to check exact JSON shapes the SDK's dataclasses would hide."""
    headers = {"Authorization": f"Bearer {token or sandbox.admin_token}"}
    return requests.request(method, sandbox.url + path, headers=headers, timeout=10, **kwargs)


def calls(sandbox: DatabricksSandbox, path_prefix: str) -> list:
    return [r for r in sandbox.requests if r.path.startswith(path_prefix)]
