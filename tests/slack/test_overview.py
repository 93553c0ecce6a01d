"""The admins' part of the App Home over a whole estate (`overview.admin_overview`): counted in
SQL and over a few evaluated tokens, it says what evaluating every token says; the tokens
waiting for an owner are the first few, counted in full."""

from __future__ import annotations

from sqlalchemy import insert

from bot import db
from bot.domain.deadlines import DeadlineKind
from bot.domain.policy import Policy
from bot.models import Decision
from bot.services import decisions, report
from bot.slack.blocks import home
from bot.slack.blocks.home import HORIZON_DAYS, SHOWN_WAITING
from bot.slack.surfaces import overview
from tests.support.estate import NOW, seed_edge_estate


def test_the_admins_home_counts_what_every_token_evaluated_counts(engine):
    seed_edge_estate(engine, HORIZON_DAYS)
    policy = Policy()
    with db.session_scope(engine) as session:
        handed_back = [7, 3, 7]  # two "Not mine" on token 7: it waits once
        session.execute(
            insert(Decision),
            [
                {
                    "token_pk": pk,
                    "action": decisions.NOT_MINE,
                    "actor_slack_id": "U0EVE",
                    "actor_role": "owner",
                    "parameters": {},
                    "status": decisions.REQUESTED,
                }
                for pk in handed_back
            ],
        )
        views = report.token_views(session=session, policy=policy, now=NOW)
        found = overview.admin_overview(session, policy, NOW)

    counts: dict[DeadlineKind, int] = {}
    overdue = 0
    for view in views:
        for deadline in view.evaluation.due_within(NOW, HORIZON_DAYS):
            counts[deadline.kind] = counts.get(deadline.kind, 0) + 1
            overdue += deadline.due_at <= NOW
    assert dict(found.due_counts) == counts and found.overdue == overdue

    live = {v.pk: v for v in views}
    asked = [pk for pk in dict.fromkeys(handed_back) if pk in live]
    unowned = [
        v
        for v in report.by_nearest_deadline(views)
        if v.owner_kind == "service_principal" and not v.owner_slack_id and v.pk not in asked
    ]
    assert len(unowned) > SHOWN_WAITING  # the estate has more than the Home shows
    assert [w.view.pk for w in found.waiting] == asked + [v.pk for v in unowned[:SHOWN_WAITING]]
    assert found.waiting_count == len(asked) + len(unowned)


def test_the_home_counts_every_waiting_token_and_shows_the_first():
    waiting = [home.WaitingToken(_View(pk), f"t{pk}", "why") for pk in range(SHOWN_WAITING)]
    admin = home.AdminOverview({}, 0, [], waiting, waiting_count=1234)

    shown = str([block.to_dict() for block in home.admin_blocks(admin, "UTC")])

    assert "*Waiting for an owner* (1234)" in shown
    assert f"And {1234 - SHOWN_WAITING} more waiting for an owner." in shown


class _View:
    def __init__(self, pk: int) -> None:
        self.pk, self.token_id, self.workspace, self.comment = pk, f"tok{pk:08d}", "prod", "etl"
