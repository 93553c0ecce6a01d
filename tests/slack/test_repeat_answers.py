"""A burst of repeated clicks gets one answer per clicker and button (bot/slack/repeat_answers.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bot.slack import repeat_answers
from bot.slack.repeat_answers import ANSWER_AGAIN_AFTER, RecentAnswers


def test_a_repeat_is_answered_once_a_while_and_again_after():
    seconds = [100.0]
    answers = RecentAnswers(monotonic=lambda: seconds[0])
    key = ("U1", "n7", "revoke")
    assert answers.first_in_a_while(key)
    assert not answers.first_in_a_while(key)
    assert answers.first_in_a_while(("U1", "n7", "accept"))  # another decision on the button
    assert answers.first_in_a_while(("U2", "n7", "revoke"))  # another clicker
    seconds[0] += ANSWER_AGAIN_AFTER + 1
    assert answers.first_in_a_while(key)


def test_a_decision_told_makes_its_repeats_quiet():
    answers = RecentAnswers()
    answers.told(("U1", "n7", "revoke"))
    assert not answers.first_in_a_while(("U1", "n7", "revoke"))


def test_parallel_repeats_answer_once():
    answers = RecentAnswers()
    with ThreadPoolExecutor(max_workers=16) as pool:
        answered = list(pool.map(lambda _: answers.first_in_a_while(("U1", "n7", "revoke")), range(200)))
    assert answered.count(True) == 1


def test_what_it_remembers_stays_bounded(monkeypatch):
    monkeypatch.setattr(repeat_answers, "_PRUNE_AT", 10)
    seconds = [0.0]
    answers = RecentAnswers(monotonic=lambda: seconds[0])
    for n in range(10):
        answers.told(("U1", f"n{n}", "revoke"))
    seconds[0] += ANSWER_AGAIN_AFTER + 1
    answers.told(("U1", "n99", "revoke"))
    assert len(answers._told) == 1
