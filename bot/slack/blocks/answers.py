"""What every `/tokens` answer is made of (STYLE.md 3): the `Answer` (fallback text and blocks),
the help and refusals, and the paging.

Every answer is ephemeral and fits one message: long lists are split into pages of at most
`PAGE_BLOCKS` blocks, with Previous/Next page buttons whose value is the page number and the
command that made the answer (`"2 risky"`); clicking one runs that command again for the clicker,
checked like a typed one. User text (comments, reasons, what was typed) is always escaped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.slack.blocks import fit
from bot.slack.blocks.budget import Budget
from bot.slack.blocks.fit import clip
from bot.slack.blocks.reminders import SECTION_TEXT_LIMIT
from bot.slack.blocks.text import code, escape
from bot.slack.ids import COMMAND, Action

PAGE_BLOCKS = 40  # per answer (Slack allows 50 per message): room for the title and the pager
LINES_PER_SECTION = 10
BUTTON_VALUE_LIMIT = 2000
ECHO_CHARS = 40
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
PAGING_NOTE = "Long answers come in pages of about 40 blocks: use the *Next page* button under them."


@dataclass(frozen=True, slots=True)
class Usage:
    """One subcommand as the help shows it."""

    name: str
    arguments: str
    summary: str
    admin: bool = False

    @property
    def line(self) -> str:
        return code(f"{COMMAND} {self.name}{' ' + self.arguments if self.arguments else ''}")


@dataclass(frozen=True, slots=True)
class Answer:
    """An ephemeral answer: fallback text and blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": [block.to_dict() for block in self.blocks]}


@dataclass(frozen=True, slots=True)
class Page:
    """Which page to show, and the command (without `/tokens`) that makes the answer."""

    number: int
    command: str


# ---------------------------------------------------------------------------------------------
# text helpers


def echo(text: str) -> str:
    """What someone typed, shown back safely."""
    return code(clip(text, ECHO_CHARS)) if text.strip() else "nothing"


def person(slack_id: str | None, fallback: str | None = None) -> str:
    """A Slack mention for a real user id; anything else as escaped text."""
    if slack_id and SLACK_USER.match(slack_id):
        return f"<@{slack_id}>"
    return escape(fallback or slack_id or "nobody")


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def listed(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


_section = fit.section
_context = fit.context


def line_sections(lines: Sequence[str], heading: str | None = None) -> list[list[Block]]:
    """Lines in sections of at most `LINES_PER_SECTION` lines and 3000 characters, each a page
    entry; a long group repeats its heading with "(continued)"."""
    entries: list[list[Block]] = []
    chunk: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal chunk, size
        if not chunk:
            return
        title = heading if not entries else f"{heading} (continued)" if heading else None
        text = "\n".join(([f"*{title}*"] if title else []) + chunk)
        entries.append([_section(text)])
        chunk, size = [], 0

    for line in lines:
        line = fit.fit(line, SECTION_TEXT_LIMIT - 200)
        if len(chunk) >= LINES_PER_SECTION or size + len(line) + 1 > SECTION_TEXT_LIMIT - 200:
            flush()
        chunk.append(line)
        size += len(line) + 1
    flush()
    return entries


# ---------------------------------------------------------------------------------------------
# pages


def pager_value(number: int, command: str) -> str:
    return f"{number} {command}"


def parse_pager_value(value: str | None) -> tuple[int, str]:
    """(page, command) of a pager button; page 1 and no command for anything malformed."""
    number, _, command = (value or "").partition(" ")
    if not (number.isascii() and number.isdigit()) or len(number) > 5:
        return 1, ""
    return max(1, int(number)), command


def _split_pages(title: list[Block], entries: Sequence[list[Block]]) -> list[list[list[Block]]]:
    """Entries in pages that each fit one message with the title and the pager (`Budget`)."""
    pages: list[list[list[Block]]] = [[]]
    budget = Budget(blocks=PAGE_BLOCKS, spent=title, keep_blocks=2)
    for entry in entries:
        if not budget.take(entry) and pages[-1]:
            pages.append([])
            budget = Budget(blocks=PAGE_BLOCKS, spent=title, keep_blocks=2)
            budget.take(entry)
        pages[-1].append(entry)
    return pages


def paged(
    title: list[Block],
    entries: Sequence[list[Block]],
    page: Page,
    text: str,
    *,
    more: tuple[int, int] = (0, 0),
) -> Answer:
    """The title, then the entries of the requested page (the last one if it is past the end),
    then where this page is and the buttons to the others. A page holds at most `PAGE_BLOCKS`
    blocks and one message's worth of text. `more` = (rows in the entries, rows not in them):
    a long list read only up to the page asked for, whose page count is then an estimate."""
    pages = _split_pages(title, entries)
    number = min(max(page.number, 1), len(pages))
    built = list(title) + [block for entry in pages[number - 1] for block in entry]
    given, left = more
    if len(pages) > 1:
        count = str(len(pages))
        if left and given:  # as many more entries as the rows left make, as many to a page as the first
            entries_in_all = len(entries) * (given + left) / given
            count = f"about {math.ceil(entries_in_all / len(pages[0])):,}"
        built.append(_context(f"Page {number} of {count}"))
        buttons = []
        if number > 1 and len(pager_value(number - 1, page.command)) <= BUTTON_VALUE_LIMIT:
            buttons.append(
                ButtonElement(
                    text="Previous page",
                    action_id=Action.PREVIOUS_PAGE,
                    value=pager_value(number - 1, page.command),
                )
            )
        if number < len(pages) and len(pager_value(number + 1, page.command)) <= BUTTON_VALUE_LIMIT:
            buttons.append(
                ButtonElement(
                    text="Next page", action_id=Action.NEXT_PAGE, value=pager_value(number + 1, page.command)
                )
            )
        if buttons:
            built.append(ActionsBlock(block_id="pager", elements=buttons))
        text += f" (page {number} of {count})"
    return Answer(text, built)


# ---------------------------------------------------------------------------------------------
# help, refusals, plain answers


def help_answer(usages: Sequence[Usage]) -> Answer:
    everyone = [f"{u.line}: {u.summary}" for u in usages if not u.admin]
    admins = [f"{u.line}: {u.summary}" for u in usages if u.admin]
    blocks: list[Block] = [
        _section(f"*{COMMAND}*: your Databricks tokens and what is about to happen to them."),
        _section("*For everyone*\n" + "\n".join(everyone)),
        _section("*For tokenbot admins*\n" + "\n".join(admins)),
        _context(
            "A token id is the full id or its first characters as messages show them "
            "(e.g. `0a1b2c3d4e`); if two workspaces share it, write `workspace/id`. " + PAGING_NOTE
        ),
    ]
    return Answer(f"{COMMAND} help: " + ", ".join(u.name for u in usages), blocks)


def refusal(line: str, usages: Sequence[Usage]) -> Answer:
    """A one-line answer to something that cannot be done, with how to do it right."""
    usage = "\n".join(f"{u.line}: {u.summary}" for u in usages)
    return Answer(line, [_section(line), _context(("Usage:\n" if len(usages) == 1 else "") + usage)])


def plain(message: str) -> Answer:
    """One line or paragraph, already in safe mrkdwn."""
    return Answer(fit.fit(message, SECTION_TEXT_LIMIT), [_section(message)])


def failure() -> Answer:
    return plain("Something went wrong on tokenbot's side; nothing was changed. The error is logged.")
