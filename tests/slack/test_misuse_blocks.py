"""A misuse finding as the admins channel reads it: evidence escaped, buttons carrying only the
finding's reference, who acted once it is closed, and no Revoke for a token tokenbot does not know."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.domain.misuse import MisuseKind
from bot.enums import MisuseStatus
from bot.sandbox.slack import validate_blocks
from bot.services.misuse import MisuseNotice
from bot.slack.blocks.misuse import finding_id, finding_message

WHEN = datetime(2026, 11, 30, 9, 37, tzinfo=UTC)
HOSTILE = "<!channel> *evil* <https://x|y>"


def notice(**changes) -> MisuseNotice:
    fields = {
        "finding_id": 7,
        "kind": MisuseKind.NEW_CLIENT,
        "workspace": "prod",
        "token_id": "tok-1",
        "evidence": {
            "client": HOSTILE,
            "first_seen": "2026-11-30T09:37:08.367000Z",
            "last_seen": "2026-11-30T10:00:00Z",
            "calls": 3,
            "networks": ["203.0.113.0/24"],
            "known_clients": ["dbt"],
            "agents": [HOSTILE],
        },
        "detected_at": WHEN,
        "known_token": True,
        "comment": "ingest",
        "owner": "sam@acme.example",
        "owner_slack_id": "U0SAM",
    }
    fields.update(changes)
    return MisuseNotice(**fields)


def test_a_finding_shows_its_evidence_escaped_with_acknowledge_and_revoke():
    text, built = finding_message(notice())

    dumped = json.dumps([b.to_dict() for b in built])
    assert text == "Token used by a new client: token tok-1 in prod"
    assert "<!channel>" not in dumped and "&lt;!channel&gt;" in dumped
    assert "first seen Mon 30 Nov 2026, 09:37 UTC" in dumped and "Known before: dbt" in dumped
    [actions] = [b.to_dict() for b in built if b.to_dict()["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("misuse_acknowledge", "m7"),
        ("misuse_revoke", "m7"),
    ]
    validate_blocks([b.to_dict() for b in built])


def test_a_closed_finding_says_who_closed_it_instead_of_buttons():
    _, built = finding_message(notice(status=MisuseStatus.REVOKED, acted_by="U0RAVI"))

    dumped = json.dumps([b.to_dict() for b in built])
    assert "Revoked by <@U0RAVI>." in dumped and "misuse_revoke" not in dumped


def test_a_token_tokenbot_does_not_know_can_only_be_acknowledged():
    failed = notice(
        kind=MisuseKind.FAILED_LOGINS,
        known_token=False,
        evidence={
            "day": "2026-11-30",
            "failures": 40,
            "threshold": 20,
            "first_seen": "x",
            "last_seen": "y",
            "networks": [{"name": "198.51.100.0/24", "failures": 40}],
        },
    )

    _, built = finding_message(failed)

    dumped = json.dumps([b.to_dict() for b in built])
    assert "not in tokenbot's inventory" in dumped and "40 failed logins (more than 20)" in dumped
    assert "198.51.100.0/24 (40)" in dumped and "misuse_revoke" not in dumped


def test_only_a_finding_reference_names_a_finding():
    assert finding_id("m12") == 12
    for forged in (None, "", "12", "m", "m-1", "mx", "t12", "m" + "9" * 30):
        assert finding_id(forged) == 0
