"""The standard sandbox workspace and an admin client on it, for every Databricks sandbox test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from databricks.sdk import WorkspaceClient

from bot.sandbox.databricks import DatabricksSandbox
from tests.support.databricks_sandbox import ALICE, BOB, ETL_APP, ETL_SP, WAREHOUSE, make_client


@pytest.fixture
def sandbox() -> Iterator[DatabricksSandbox]:
    """A started workspace with two users, one service principal and one warehouse."""
    with DatabricksSandbox(chunk_rows=4) as sandbox:
        sandbox.add_user(id=ALICE, user_name="alice@example.com", display_name="Alice")
        sandbox.add_user(id=BOB, user_name="bob@example.com", display_name="Bob")
        sandbox.add_service_principal(id=ETL_SP, application_id=ETL_APP, display_name="etl")
        sandbox.add_warehouse(WAREHOUSE)
        yield sandbox


@pytest.fixture
def client(sandbox: DatabricksSandbox) -> WorkspaceClient:
    return make_client(sandbox)
