"""The deadlines a click's button is checked against (`report.deadlines_now`) are exactly those
`report.token_views` computes, for tokens on the edges of every rule and policies that override
them, while reading no usage, shadow calls or consumers."""

from __future__ import annotations

import pytest

from bot import db
from bot.services import consumers, report, shadow, usage
from tests.services.test_windows import POLICIES
from tests.support.estate import NOW, seed_edge_estate


@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
def test_each_tokens_deadlines_are_those_of_its_view(engine, policy):
    seed_edge_estate(engine, 365)
    with db.session_scope(engine) as session:
        views = report.token_views(session=session, policy=policy, now=NOW)
        assert views
        for view in views:
            found = report.deadlines_now(session=session, policy=policy, now=NOW, token_pk=view.pk)
            assert found is not None
            assert found.deadlines == view.evaluation.deadlines, view.token_id


def test_an_unknown_or_gone_token_has_none(engine):
    seed_edge_estate(engine, 14)
    with db.session_scope(engine) as session:
        live = {view.pk for view in report.token_views(session=session, policy=POLICIES["default"], now=NOW)}
        every = {view.pk for view in report.token_views(
            session=session, policy=POLICIES["default"], now=NOW, include_gone=True)}
        for pk in (every - live) | {10**9}:
            assert report.deadlines_now(session=session, policy=POLICIES["default"], now=NOW, token_pk=pk) is None


def test_no_usage_shadow_or_consumers_are_read(engine, monkeypatch):
    seed_edge_estate(engine, 14)

    def never(*args, **kwargs):
        raise AssertionError("read for a button's deadline")

    monkeypatch.setattr(usage, "load_index", never)
    monkeypatch.setattr(shadow, "annotate", never)
    monkeypatch.setattr(consumers, "attach", never)
    with db.session_scope(engine) as session:
        assert report.deadlines_now(session=session, policy=POLICIES["default"], now=NOW, token_pk=1) is not None
