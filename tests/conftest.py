"""Shared fixtures: a clean environment, and real databases (SQLite always, PostgreSQL when
TOKENBOT_TEST_DATABASE_URL is set, as `.ci/run` does)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from bot import db

POSTGRES_URL = os.environ.get("TOKENBOT_TEST_DATABASE_URL")
_ENV_PREFIXES = ("TOKENBOT_", "SLACK_", "DATABRICKS_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No test sees the developer's credentials or config, and none writes to the work tree."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))


def _database_params() -> list:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgres",
            id="postgres",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="TOKENBOT_TEST_DATABASE_URL is not set"),
        ),
    ]


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tokenbot-test.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(db.normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        _drop_schema(admin, schema)
        admin.dispose()


def _drop_schema(admin: Engine, schema: str) -> None:
    """DROP SCHEMA, again if PostgreSQL picks it as a deadlock's victim: work the bot does after
    answering (a lazy listener) can still be reading the schema when the test ends."""
    for attempt in range(10):
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            return
        except OperationalError as error:
            if attempt == 9 or "deadlock" not in str(error):
                raise
            time.sleep(0.5)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database."""
    engine = db.make_engine(database_url)
    db.migrate(engine)
    yield engine
    engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") == "true" and not POSTGRES_URL:
        raise pytest.UsageError("CI must test PostgreSQL too: set TOKENBOT_TEST_DATABASE_URL (see .ci/run)")


from tests.support.bot_server import slack_mode  # noqa: E402, F401  (HTTP and Socket Mode, for the Slack tests)
from tests.support.world import world  # noqa: E402, F401  (the whole-world fixture, shared by many modules)
