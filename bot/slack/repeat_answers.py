"""One answer per clicker and button in a burst.

A click that only repeats a decision (a refused duplicate: the person clicked twice, or ten times
while their first click was at Databricks) is recorded like any other, but its clicker is told
again only after ANSWER_AGAIN_AFTER: they have the answer to their first click, and the message
shows the outcome. Slack allows `chat.postEphemeral` 100+ calls a minute per workspace (Tier 4,
https://api.slack.com/docs/rate-limits): an announcement that makes 200 owners click ten times
each would otherwise spend twenty minutes of that budget on repeats, ahead of other owners'
answers. Kept per process: another replica answers its own clicks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

ANSWER_AGAIN_AFTER = 60.0  # seconds
_PRUNE_AT = 10_000  # remembered answers before the expired ones are dropped


class RecentAnswers:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._told: dict[Hashable, float] = {}

    def told(self, key: Hashable) -> None:
        """The clicker was just answered about `key` (their decision, on that button)."""
        with self._lock:
            self._told[key] = self._monotonic()
        self._prune()

    def _prune(self) -> None:
        with self._lock:
            if len(self._told) > _PRUNE_AT:
                oldest = self._monotonic() - ANSWER_AGAIN_AFTER
                self._told = {k: at for k, at in self._told.items() if at > oldest}

    def first_in_a_while(self, key: Hashable) -> bool:
        """Whether to answer a repeat about `key`: not when its clicker was answered lately; when
        they were not, the answer about to go counts as told (one check, for parallel repeats)."""
        with self._lock:
            at = self._told.get(key)
            now = self._monotonic()
            if at is not None and now - at < ANSWER_AGAIN_AFTER:
                return False
            self._told[key] = now
        self._prune()
        return True
