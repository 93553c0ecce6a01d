"""Work after the ack (bot/slack/first_clicks.py, bot/slack/listeners/lazy.py): a repeated click
on a button still being worked on waits for other owners' first clicks."""

from __future__ import annotations

import logging
import threading

import pytest

from bot.slack.first_clicks import FirstClicksFirst, button_of
from bot.slack.listeners.lazy import soon
from tests.support.bot_server import wait_for


def click(value: str, action_id: str = "token_revoke") -> dict:
    return {"type": "block_actions", "actions": [{"action_id": action_id, "value": value}]}


@pytest.fixture
def work():
    runner = FirstClicksFirst(workers=4, repeat_workers=1, patience=60)
    yield runner
    runner.shutdown(wait=False)


def test_a_button_is_its_action_and_value_and_anything_else_is_not_a_button():
    assert button_of(click("n7")) == ("token_revoke", "n7")
    assert button_of({"type": "view_submission"}) is None
    assert button_of({"type": "block_actions", "actions": []}) is None
    assert button_of({"type": "block_actions", "actions": ["x"]}) is None
    assert button_of("not a payload") is None


def test_a_repeat_waits_until_no_first_click_is_running_then_runs(work):
    order: list[str] = []
    release = threading.Event()

    def first() -> None:
        release.wait(30)
        order.append("first")

    work.submit(click("n1"), first)
    work.submit(click("n1"), lambda: order.append("repeat"))  # the same button, clicked again
    work.submit(click("n2"), lambda: order.append("another owner"))
    wait_for(lambda: order == ["another owner"], what="another owner's first click, not held up")
    release.set()
    wait_for(lambda: order == ["another owner", "first", "repeat"], what="the repeat after the first click")


def test_a_repeat_runs_after_its_patience_even_while_first_clicks_keep_running():
    runner = FirstClicksFirst(workers=2, repeat_workers=1, patience=0.2)
    release, ran = threading.Event(), threading.Event()
    runner.submit(click("n1"), lambda: release.wait(30))
    runner.submit(click("n1"), ran.set)
    wait_for(ran.is_set, what="the repeat, once its patience ran out")
    release.set()
    runner.shutdown()


def test_a_click_after_the_first_finished_is_a_first_click_again(work):
    done = threading.Event()
    work.submit(click("n1"), lambda: None)
    wait_for(lambda: not work._open, what="the first click to finish")
    blocker = threading.Event()
    work.submit(click("n9"), lambda: blocker.wait(30))  # a first click still running elsewhere
    work.submit(click("n1"), done.set)
    wait_for(done.is_set, what="the later click on n1, run as a first click")
    blocker.set()


def test_a_failing_work_is_logged_and_its_button_is_free_again(work, caplog):
    def boom() -> None:
        raise RuntimeError("a listener bug")

    with caplog.at_level(logging.ERROR, logger="bot.slack.first_clicks"):
        work.submit(click("n1"), boom)
        wait_for(lambda: "a Slack listener failed" in caplog.text, what="the logged failure")
    wait_for(lambda: not work._open, what="the button freed")


def test_shutdown_finishes_the_repeats_handed_over():
    runner = FirstClicksFirst(workers=1, repeat_workers=1, patience=60)
    ran: list[int] = []
    release = threading.Event()
    runner.submit(click("n1"), lambda: release.wait(30))
    for n in range(3):
        runner.submit(click("n1"), lambda n=n: ran.append(n))
    release.set()
    runner.shutdown(wait=True)
    assert ran == [0, 1, 2]


class _Ack:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, **kwargs) -> None:
        self.calls.append(kwargs)


def test_a_listener_acks_then_hands_over_the_arguments_its_work_names(work):
    got: dict = {}
    done = threading.Event()

    def handle(body, client, respond) -> None:
        got.update(body=body, client=client, respond=respond)
        done.set()

    listener = soon(work, handle)
    ack = _Ack()
    listener(ack=ack, body=click("n1"), client="client", respond="respond", event=None, command=None)
    assert ack.calls == [{}]
    wait_for(done.is_set, what="the work")
    assert got == {"body": click("n1"), "client": "client", "respond": "respond"}


def test_a_modal_with_bad_input_is_answered_with_its_errors_and_nothing_runs(work):
    ran = threading.Event()
    listener = soon(work, lambda body: ran.set(), check=lambda body: {"days": "A number, please."})
    ack = _Ack()
    listener(ack=ack, body={"type": "view_submission"}, client=None, respond=None, event=None, command=None)
    assert ack.calls == [{"response_action": "errors", "errors": {"days": "A number, please."}}]
    assert not ran.wait(0.3)


def test_work_asking_for_something_bolt_does_not_hand_over_is_refused_when_bound(work):
    with pytest.raises(TypeError, match="say"):
        soon(work, lambda body, say: None)
