"""Where a listener's work runs after Slack has its answer: a click on a button that is already
being worked on waits behind everyone else's first click.

A digest or an announcement makes hundreds of owners click within a minute, and many click twice
or ten times while the first click is still at Databricks. Every click is worked on (each repeat is
recorded, and its clicker told who is deciding), but a repeat changes nothing: the message updates
when the first click's decision is recorded. So repeats run on a small pool of their own. They
cannot hold up, nor crowd out of the interpreter, the first click of another owner, whose answer
is what they are waiting to see.

A button is the same button when its action id and value (the server-side reference it carries)
are the same. Commands, submissions and events all run on the first pool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

logger = logging.getLogger(__name__)

Button = tuple[str, str]
# Seconds a repeated click waits at most for the first clicks to be worked on before it runs anyway
# (its clicker is then told who is deciding): a steady stream of other owners' clicks cannot hold
# it back for longer.
REPEAT_PATIENCE = 5.0


def button_of(body: Any) -> Button | None:
    """The clicked button (action id, value), or None for anything that is not a button click."""
    if not isinstance(body, dict) or body.get("type") != "block_actions":
        return None
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return None
    action = actions[0]
    return str(action.get("action_id") or ""), str(action.get("value") or "")


class FirstClicksFirst:
    """Runs first clicks (and every command, submission and event) on `workers` threads. A click
    on a button whose earlier click is still queued or running waits, on `repeat_workers` threads,
    until no first click is waiting or running, or for `patience` seconds at most."""

    def __init__(self, *, workers: int, repeat_workers: int, patience: float = REPEAT_PATIENCE) -> None:
        self._first = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-work")
        self._patience = patience
        self._changed = threading.Condition()
        self._open: Counter[Button] = Counter()  # clicks per button, queued or running
        self._firsts = 0  # first clicks (and other work) queued or running
        self._repeats: deque[tuple[float, Button, Callable[[], None]]] = deque()
        self._stopping = False
        self._repeat_threads = [
            threading.Thread(target=self._run_repeats, name=f"slack-repeat_{n}", daemon=True)
            for n in range(repeat_workers)
        ]
        for thread in self._repeat_threads:
            thread.start()

    def submit(self, body: Any, work: Callable[[], None]) -> None:
        """Run `work` for the request whose payload is `body`, soon."""
        button = button_of(body)
        with self._changed:
            repeat = button is not None and self._open[button] > 0
            if button is not None:
                self._open[button] += 1
            if repeat:
                self._repeats.append((time.monotonic(), button, work))
                self._changed.notify()
                return
            self._firsts += 1
        self._first.submit(self._run, button, work, first=True)

    def _run(self, button: Button | None, work: Callable[[], None], *, first: bool) -> None:
        try:
            _logged(work)
        finally:
            with self._changed:
                if first:
                    self._firsts -= 1
                if button is not None:
                    self._open[button] -= 1
                    if self._open[button] <= 0:
                        del self._open[button]
                self._changed.notify_all()

    def _run_repeats(self) -> None:
        while True:
            with self._changed:
                while not self._repeat_due():
                    if self._stopping and not self._repeats:
                        return
                    self._changed.wait(timeout=0.5)
                _, button, work = self._repeats.popleft()
            self._run(button, work, first=False)

    def _repeat_due(self) -> bool:
        if not self._repeats:
            return False
        waited = time.monotonic() - self._repeats[0][0]
        return self._firsts == 0 or waited >= self._patience or self._stopping

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work; with `wait`, finish what was handed over first."""
        self._first.shutdown(wait=wait)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if wait:
            for thread in self._repeat_threads:
                thread.join()


def _logged(work: Callable[[], None]) -> None:
    try:
        work()
    except Exception:
        logger.exception("a Slack listener failed after its answer to Slack")
