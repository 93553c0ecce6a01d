"""`tokenbot report`: the contract's JSON, CSV and the table, with filters, after a real sync."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from bot import clock, db
from bot.cli.main import app
from tests.support.workspaces import sandbox_org

runner = CliRunner()
CONTRACT_KEYS = {
    "workspace",
    "token_id",
    "owner",
    "owner_slack_id",
    "comment",
    "created_at",
    "expires_at",
    "last_used_on",
    "scopes",
    "inferred_scopes",
    "autoscope_state",
    "deadlines",
    "findings",
    "shadow",  # what narrowing would deny, for a token in observation (else null)
    "consumers",
}


@pytest.fixture
def synced(tmp_path, monkeypatch, database_url):
    """Two workspaces with a few telling tokens, synced."""
    with sandbox_org(tmp_path, monkeypatch, database_url) as org:
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        now = clock.now()
        prod, dev = org["prod"], org["dev"]
        alice = prod.add_user(user_name="alice@example.com")
        etl = prod.add_service_principal(application_id="app-etl")
        prod.add_token(
            token_id="t-observed",
            owner_id=alice,
            comment="nightly report",
            created_at=now - timedelta(days=25),
            last_used_at=now,
            scopes=["all-apis"],
            inferred_scopes=["sql"],
            autoscope_state="AUTOSCOPE_STATE_RUNNING",
            expires_at=now + timedelta(days=300),
        )
        prod.add_token(
            token_id="t-admin",
            owner_id=etl,
            comment="tmp",
            created_at=now - timedelta(days=30),
            last_used_at=now - timedelta(days=20),
            scopes=["authentication"],
        )
        dev.add_token(
            token_id="t-far",
            owner_id=dev.add_user(user_name="bob@example.com"),
            comment="dashboards",
            created_at=now - timedelta(days=1),
            last_used_at=now,
            expires_at=now + timedelta(days=200),
            scopes=["dashboards"],
        )
        assert runner.invoke(app, ["sync"]).exit_code == 0
        yield org


def report(*args: str):
    result = runner.invoke(app, ["report", *args])
    assert result.exit_code == 0, result.output
    return result


def test_json_follows_the_contract(synced):
    rows = json.loads(report("--format", "json").stdout)

    assert [r["token_id"] for r in rows] == ["t-observed", "t-admin", "t-far"]  # nearest deadline first
    assert all(set(r) == CONTRACT_KEYS for r in rows)
    observed = rows[0]
    assert observed["owner"] == "alice@example.com"
    assert observed["autoscope_state"] == "AUTOSCOPE_STATE_RUNNING"
    assert observed["created_at"].endswith("Z")
    kinds = [d["kind"] for d in observed["deadlines"]]
    assert kinds[0] == "autoscope_enforcement"
    assert set(kinds) == {"autoscope_enforcement", "expiry", "inactivity_revocation", "org_policy"}
    assert observed["deadlines"][0]["step"] == 7  # five days to go
    assert observed["shadow"]["audit"]["state"] == "not_read"  # no audit_warehouse_id: said, not guessed
    assert observed["shadow"]["denied"] == [] and rows[1]["shadow"] is None
    admin = rows[1]
    assert admin["owner"] == "app-etl"
    assert {"privileged_scope", "no_expiry", "junk_comment", "service_principal_token"} <= set(
        admin["findings"]
    )


def test_days_workspace_and_owner_filters(synced):
    assert [r["token_id"] for r in json.loads(report("-f", "json", "--days", "7").stdout)] == ["t-observed"]
    assert [r["token_id"] for r in json.loads(report("-f", "json", "-w", "dev").stdout)] == ["t-far"]
    assert [
        r["token_id"] for r in json.loads(report("-f", "json", "--owner", "ALICE@example.com").stdout)
    ] == ["t-observed"]


def test_csv_has_a_header_and_a_row_per_token(synced):
    rows = list(csv.DictReader(io.StringIO(report("--format", "csv").stdout)))
    assert [r["token_id"] for r in rows] == ["t-observed", "t-admin", "t-far"]
    assert rows[0]["next_deadline"] == "autoscope_enforcement" and rows[0]["days_left"] == "4"


def test_table_shows_the_nearest_deadline_and_days_left(synced):
    output = report().stdout
    assert "t-observed" in output and "Auto-scoping" in output
    assert output.index("t-observed") < output.index("t-far")


def test_empty_results_say_so(synced):
    result = report("--days", "0")
    assert "No live tokens match a deadline within 0 days." in result.output


def test_report_before_any_sync_says_what_to_do(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv("TOKENBOT_DATABASE_URL", url)
    engine = db.make_engine(url)
    db.migrate(engine)
    result = report()
    assert "run `tokenbot sync`" in result.output


HOSTILE_COMMENTS = {
    "t-cr-formula": "\r=1+1+cmd|' /C calc'!A0",
    "t-formula": "=HYPERLINK(\"http://evil.example\",\"click\")",
    "t-plus": "+1+1",
    "t-minus": "-2+3",
    "t-at": "@SUM(1+1)",
    "t-tab": "\t=1+1",
    "t-esc-formula": "\x1b=1+1",
    "t-multiline": "line one\r\nline two\n=not a formula here",
    "t-terminal": "\x1b[2J\x1b]8;;http://evil.example\x1b\\click me\x1b]8;;\x1b\\ \x07\x9b31m",
}


@pytest.fixture
def hostile(synced):
    prod = synced["prod"]
    mallory = prod.add_user(user_name="mallory@example.com")
    for token_id, comment in HOSTILE_COMMENTS.items():
        prod.add_token(token_id=token_id, owner_id=mallory, comment=comment,
                       created_at=clock.now() - timedelta(days=3), last_used_at=clock.now())
    assert runner.invoke(app, ["sync"]).exit_code == 0
    return synced


def test_csv_rows_end_in_crlf_and_no_cell_is_a_formula(hostile):
    raw = report("--format", "csv").stdout_bytes.decode()  # .stdout turns CRLF into LF

    rows = list(csv.reader(io.StringIO(raw, newline="")))
    header, body = rows[0], rows[1:]
    assert len(body) == 3 + len(HOSTILE_COMMENTS)
    assert raw.count("\r\n") == len(rows) + raw.count("line one\r\n")  # CRLF rows; one CRLF in a cell
    assert "\x1b" not in raw and "\x07" not in raw and "\x9b" not in raw
    comments = {row[header.index("token_id")]: row[header.index("comment")] for row in body}
    for token_id in set(HOSTILE_COMMENTS) - {"t-multiline", "t-terminal"}:
        assert comments[token_id].startswith("'"), comments[token_id]
    assert comments["t-cr-formula"] == "'\r=1+1+cmd|' /C calc'!A0"
    assert comments["t-multiline"] == "line one\r\nline two\n=not a formula here"  # kept, quoted
    for row in body:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (row, cell)


def test_the_table_shows_no_control_characters(hostile):
    output = report().stdout_bytes.decode()

    assert "\x1b" not in output and "\x07" not in output and "\x9b" not in output and "\r" not in output
    assert "t-terminal" in output
