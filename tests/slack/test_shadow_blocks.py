"""The words of shadow enforcement (bot/slack/blocks/shadow.py): each call with what would allow it,
audit text shown safely, and a plain sentence for every way the audit log can be missing or late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.domain.shadow import AuditFreshness, AuditState, DeniedCall, Shadow, Verdict
from bot.slack.blocks import as_text, shadow

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def denied(service="jobs", action="runNow", verdict=Verdict.DENIED, scope="jobs", approximate=False, calls=3):
    last = datetime(2026, 9, 11, 8, tzinfo=UTC)
    return DeniedCall(service, action, calls, last - timedelta(days=90), last, approximate, verdict, scope)


def test_each_call_says_what_would_allow_it():
    assert shadow.call_line(denied()) == "`jobs.runNow` x3, last 2026-09-11: needs `jobs`"
    assert shadow.call_line(denied("webTerminal", "open", Verdict.NOT_COVERED, None, calls=1)) == (
        "`webTerminal.open` x1, last 2026-09-11: no scope allows it: manual scopes will not help"
    )
    assert shadow.call_line(denied("sparkUiProxy", "getLogs", Verdict.UNKNOWN, None, calls=1)).endswith(
        "tokenbot does not know which scope allows it"
    )
    assert "_(by the owner, maybe with another token)_" in shadow.call_line(denied(approximate=True))


def test_audit_text_cannot_mention_anyone_or_break_out_of_its_code_span():
    line = shadow.call_line(denied("<!channel>", "run`Now*", Verdict.UNKNOWN, None))
    assert "<!channel>" not in line and "&lt;!channel&gt;" in line
    assert line.startswith("`&lt;!channel&gt;.run'Now*`")


@pytest.mark.parametrize(
    ("audit", "says"),
    [
        (AuditFreshness(AuditState.FRESH, NOW, NOW), None),
        (AuditFreshness(AuditState.NOT_READ), "is not read (no `audit_warehouse_id`"),
        (
            AuditFreshness(AuditState.FAILED, NOW - timedelta(days=1), NOW, NOW, "boom"),
            "The audit log read of 2026-11-30 failed; shown: the read of 2026-11-29",
        ),
        (AuditFreshness(AuditState.FAILED, None, None, NOW, "boom"), "failed: nothing to show"),
        (AuditFreshness(AuditState.STALE, NOW - timedelta(days=3), NOW), "last read 2026-11-27"),
        (AuditFreshness(AuditState.EMPTY, NOW), "held no event in the last 180 days"),
        (
            AuditFreshness(AuditState.DELAYED, NOW, NOW - timedelta(days=3)),
            "late: its newest event is from 2026-11-27",
        ),
    ],
)
def test_missing_failed_or_late_audit_data_is_said(audit, says):
    caveat = shadow.audit_caveat(audit, 180)
    assert caveat is None if says is None else says in caveat


def test_the_modal_says_why_each_scope_is_preselected():
    calls = (
        denied(),
        denied("jobs", "get", calls=1),
        denied("webTerminal", "open", Verdict.NOT_COVERED, None),
    )
    view = SimpleNamespace(shadow=Shadow(("sql",), calls, AuditFreshness(AuditState.FRESH, NOW, NOW), 180))

    text = as_text(shadow.modal_reasons(view, ["sql", "jobs"]))

    assert "• `sql`: seen by auto-scoping" in text
    assert "• `jobs`: `jobs.runNow` x3, last 2026-09-11; `jobs.get` x1, last 2026-09-11" in text
    assert "`webTerminal.open` x3, last 2026-09-11: no scope allows it" in text
