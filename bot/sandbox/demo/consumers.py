"""The demo's step about who uses a token and misuse (a mix-in of `Demo`, over `DemoStage`'s
sandboxes and helpers): the Power BI token's reminder names its consumer, and a token used from a
new network reaches the admins channel once, where an admin acknowledges it."""

from __future__ import annotations

import json

from rich.markup import escape
from rich.panel import Panel
from sqlalchemy import select

from bot import db
from bot.sandbox.demo.transcript import Verdict
from bot.sandbox.seed import ADMIN_CHANNEL


class ConsumersStory:
    """Who uses a token (the Power BI token's reminder), and a misuse finding in the admins
    channel (a token used from a new network) that an admin acknowledges."""

    def consumers_and_misuse(self) -> Verdict:
        from bot.jobs.runners import post_misuse_findings
        from bot.models import MisuseFinding
        from bot.sandbox.seed import ADMIN
        from bot.slack.blocks import as_text

        message, _ = self._reminder_for("U0MARCO", "observed_12")
        used_by = next(
            (line for line in as_text(message["blocks"]).splitlines() if "Power BI" in line),
            "no Used by line",
        )
        self.console.print(f"  Marco's reminder: {escape(used_by.strip())}", highlight=False)
        post_misuse_findings(self.jobs)
        posted = [m for m in self.slack.messages(ADMIN_CHANNEL) if "new network" in json.dumps(m["blocks"])]
        if posted:
            self.console.print(
                Panel(escape(as_text(posted[-1]["blocks"])), title="#tokenbot-admins", expand=False)
            )
            actions = next(b for b in posted[-1]["blocks"] if b["type"] == "actions")
            self.slack.click(
                self.slack_url,
                ADMIN,
                posted[-1]["channel"],
                posted[-1]["ts"],
                "misuse_acknowledge",
                value=actions["elements"][0]["value"],
                block_id=actions["block_id"],
                mode=self.mode,
            )

        def acknowledged() -> bool:
            with db.session_scope(self.engine) as session:
                return bool(
                    session.execute(select(MisuseFinding).where(MisuseFinding.acted_by == ADMIN)).first()
                )

        done = bool(posted) and bool(self._wait(acknowledged, "the acknowledgement"))
        ok = "Power BI" in used_by and len(posted) == 1 and done
        return Verdict(
            "",
            "the Power BI token's reminder names Power BI; one new-network finding, acknowledged by an admin",
            f"Used by {'names Power BI' if 'Power BI' in used_by else 'MISSING'}; {len(posted)} new-network "
            f"finding(s) posted{', acknowledged' if done else ''}",
            ok,
        )
