"""Is the local clock right? Enforcement asks before it revokes anything (DESIGN.md section 6).

Every deadline is computed from the local clock, so a clock a year ahead makes nearly every token
look overdue. Slack and Databricks answer with their own time in the HTTP `Date` header; when the
local clock is more than `TOLERANCE` away from any of them, or one of them cannot be asked, the
clock is not trusted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot import clock
from bot.databricks.records import GatewayError
from bot.services.inventory import GatewayFactory
from bot.services.ports import TimeSource

logger = logging.getLogger(__name__)

TOLERANCE = timedelta(minutes=5)


class DatabricksClock:
    """One workspace's clock, through its gateway."""

    def __init__(self, gateway_for: GatewayFactory, workspace: str) -> None:
        self.name = f"Databricks ({workspace})"
        self._gateway_for, self._workspace = gateway_for, workspace

    def server_time(self) -> datetime:
        return self._gateway_for(self._workspace).server_time()


def problem(sources: Sequence[TimeSource]) -> str | None:
    """Why the local clock cannot be trusted now, or None when every source agrees with it."""
    problems = []
    for source in sources:
        try:
            server = source.server_time()
        except Exception as error:  # any failure: the clock is unconfirmed
            message = error.message if isinstance(error, GatewayError) else str(error)
            logger.warning("%s could not be asked the time: %s", source.name, message)
            problems.append(f"{source.name} could not be asked the time ({_first_line(message)})")
            continue
        skew = clock.now() - server  # read after the answer: the round trip only makes it smaller
        if abs(skew) > TOLERANCE:
            side = "ahead of" if skew > timedelta(0) else "behind"
            problems.append(f"the local clock is {_duration(abs(skew))} {side} {source.name}'s")
    return "; ".join(problems) or None


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else "no reason given"


def _duration(span: timedelta) -> str:
    if span >= timedelta(days=2):
        return f"{span.days} days"
    if span >= timedelta(hours=2):
        return f"{int(span.total_seconds() // 3600)} hours"
    return f"{int(span.total_seconds() // 60)} minutes"
