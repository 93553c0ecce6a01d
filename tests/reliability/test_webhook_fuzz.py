"""Arbitrary bodies on the auto-scoping webhook, signed and unsigned: never an unhandled
exception, always a 2xx/4xx answer, and nothing stored unless the event was valid."""

from __future__ import annotations

import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot import db
from bot.config import load_settings
from bot.databricks.gateway import gateway_factory
from bot.models import Event
from bot.webhook import make_webhook, sign
from tests.support.workspaces import sandbox_org

SECRET = "fuzz-webhook-secret"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=30), "type": st.sampled_from(["autoscope.reminder", "autoscope.enforced", "x"]),
        "workspace": st.sampled_from(["prod", "nope", ""]), "token_id": st.text(max_size=20),
        "enforcement_at": st.one_of(st.text(max_size=30), st.just("2026-12-01T00:00:00Z")),
        "inferred_scopes": json_values, "scopes": json_values,
    },
)
bodies = st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
                   event_like.map(lambda v: json.dumps(v).encode()))


def test_any_body_gets_an_answer_and_only_valid_events_are_stored(tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("TOKENBOT_WEBHOOK_SECRET", SECRET)
    with sandbox_org(tmp_path, monkeypatch, database_url, names=("prod",)):
        engine = db.make_engine(database_url)
        db.migrate(engine)
        config = load_settings()
        handle = make_webhook(
            engine=engine, settings=config, gateway_for=gateway_factory(config.workspaces, config.databricks)
        )

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=bodies, signed=st.booleans())
        def check(body: bytes, signed: bool) -> None:
            stamp = str(int(time.time()))
            headers = {"x-tokenbot-timestamp": stamp}
            if signed:
                headers["x-tokenbot-signature"] = sign(SECRET, stamp, body)
            with db.session_scope(engine) as session:
                before = session.execute(select(func.count(Event.id))).scalar_one()
            status, answer = handle(body, headers)
            with db.session_scope(engine) as session:
                after = session.execute(select(func.count(Event.id))).scalar_one()
            assert status in (200, 400, 401, 409), (status, answer)  # 409: stored as rejected
            assert isinstance(answer, dict) and json.dumps(answer)
            if status not in (200, 409):
                assert after == before, "a refused body stored something"
            if not signed:
                assert status == 401

        check()
        engine.dispose()
