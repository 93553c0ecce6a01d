"""The report files stream (`exports.report_json`, `report_csv`): tokens read in any order come
out nearest deadline first, exactly as sorting every view in memory wrote them."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _as_csv_writer_writes(view, now) -> str:
    """The row as the csv module writes these cells (excel dialect, CRLF): the format's definition."""
    out = io.StringIO()
    nearest = view.evaluation.deadlines[0] if view.evaluation.deadlines else None
    safe = exports._spreadsheet_safe
    csv.writer(out, lineterminator="\r\n").writerow(
        [
            safe(view.workspace),
            safe(view.token_id),
            safe(view.owner or ""),
            safe(view.owner_slack_id or ""),
            safe(view.comment),
            report.iso(view.created_at) or "",
            report.iso(view.expires_at) or "",
            report.iso(view.last_used_on) or "",
            safe(" ".join(view.scopes)),
            safe(" ".join(view.inferred_scopes)),
            safe(view.autoscope_state or ""),
            nearest.kind.value if nearest else "",
            report.iso(nearest.due_at) if nearest else "",
            nearest.days_left(now) if nearest else "",
            "; ".join(f"{d.kind.value} {report.iso(d.due_at)}" for d in view.evaluation.deadlines),
            " ".join(view.evaluation.finding_codes),
        ]
    )
    return out.getvalue()


TEXTS = st.text(alphabet=st.sampled_from(',"\r\n\t =+-@\x1b\x00\u2028aZ9é'), max_size=12)


@pytest.fixture(scope="module")
def some_views(tmp_path_factory):
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('views') / 'views.db'}")
    db.migrate(engine)
    seed_edge_estate(engine, 30, count=60)
    with db.session_scope(engine) as session:
        return report.token_views(session=session, policy=Policy(), now=NOW)


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(TEXTS, min_size=5, max_size=5),
    scopes=st.lists(TEXTS, max_size=3),
    pick=st.integers(min_value=0, max_value=59),
)
def test_a_csv_row_is_what_the_csv_module_writes_of_its_cells(some_views, texts, scopes, pick):
    workspace, token_id, owner, comment, state = texts
    view = dataclasses.replace(
        some_views[pick],
        workspace=workspace,
        token_id=token_id,
        owner=owner or None,
        owner_slack_id=owner,
        comment=comment,
        autoscope_state=state or None,
        scopes=tuple(scopes),
    )

    assert list(exports.csv_rows([view], NOW)) == [_as_csv_writer_writes(view, NOW)]


def test_the_export_file_is_the_csv_report_in_utf8(engine, tmp_path):
    seed_edge_estate(engine, 30)
    policy = Policy()
    path = tmp_path / "export.csv"
    with db.session_scope(engine) as session:
        count = exports.export_csv(session=session, policy=policy, now=NOW, path=str(path))
        text = _streamed(session, policy, exports.report_csv)

    assert path.read_bytes() == text.encode()
    assert count == len(list(csv.reader(io.StringIO(text, newline="")))) - 1 > 300  # live tokens
