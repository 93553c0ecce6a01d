"""The report files stream (`exports.report_json`, `report_csv`): tokens read in any order come
out nearest deadline first, exactly as sorting every view in memory wrote them."""

from __future__ import annotations

import csv
import io
import json

from bot import db
from bot.domain.policy import Policy
from bot.services import exports, report, shadow, windows
from tests.support.estate import NOW, seed_edge_estate


def _streamed(session, policy, write):
    views = report.iter_views(
        session=session, policy=policy, now=NOW, order_by=windows.by_id(session)
    )
    return "".join(write(views, policy, NOW))


def test_the_streamed_json_is_every_view_sorted_then_written(engine, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_ROWS", 7)  # several chunks out of a few hundred tokens
    seed_edge_estate(engine, 30)
    policy = Policy()
    with db.session_scope(engine) as session:
        ordered = report.by_nearest_deadline(report.token_views(session=session, policy=policy, now=NOW))
        text = _streamed(session, policy, exports.report_json)
    # No audit log was read: no token has a consumer; one in observation says its audit was not read.
    expected = [
        row | {"shadow": shadow.as_json(view.shadow) if view.shadow else None, "consumers": []}
        for view, row in zip(ordered, report.contract_rows(ordered, policy, NOW), strict=True)
    ]
    assert json.loads(text) == expected
    assert text.startswith("[\n{") and text.endswith("}\n]\n")


def test_the_streamed_csv_has_a_row_per_token_nearest_deadline_first(engine):
    seed_edge_estate(engine, 30)
    policy = Policy()
    with db.session_scope(engine) as session:
        ordered = report.by_nearest_deadline(report.token_views(session=session, policy=policy, now=NOW))
        text = _streamed(session, policy, exports.report_csv)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == exports.CSV_COLUMNS
    assert [(r[0], r[1]) for r in rows[1:]] == [(v.workspace, v.token_id) for v in ordered]
    by_id = {(r[0], r[1]): dict(zip(exports.CSV_COLUMNS, r, strict=True)) for r in rows[1:]}
    for view, contract in zip(ordered, report.contract_rows(ordered, policy, NOW), strict=True):
        row = by_id[(view.workspace, view.token_id)]
        assert row["deadlines"] == "; ".join(f"{d['kind']} {d['due_at']}" for d in contract["deadlines"])
        assert row["findings"] == " ".join(contract["findings"])
        assert row["next_due_at"] == (contract["deadlines"][0]["due_at"] if contract["deadlines"] else "")
    assert all(line.endswith("\r") for line in text.split("\n")[:-1])  # CRLF rows


def test_an_empty_report_is_an_empty_array_and_a_header(engine):
    with db.session_scope(engine) as session:
        assert _streamed(session, Policy(), exports.report_json) == "[\n]\n"
        assert _streamed(session, Policy(), exports.report_csv) == ",".join(exports.CSV_COLUMNS) + "\r\n"
