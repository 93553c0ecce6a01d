"""The token report as files: a JSON array (`tokenbot report --format json`) and CSV (`--format
csv`, `/tokens export`). Both carry the contract rows of `bot.services.report`.

CSV follows RFC 4180 (CRLF rows, a field holding CR or LF quoted) and every text cell that a
spreadsheet would read as a formula (leading `= + - @`, tab, CR or LF) starts with a single quote
(OWASP, CSV injection); other control characters go (`bot.controls.strip`).
"""

from __future__ import annotations

import csv
import json
import mmap
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from itertools import tee
from typing import Any

from bot import controls
from bot.domain.policy import Policy
from bot.services import shadow
from bot.services.report import TokenView, contract_json, iso

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the key of an undated token (after every dated one)

CSV_COLUMNS = (
    "workspace",
    "token_id",
    "owner",
    "owner_slack_id",
    "comment",
    "created_at",
    "expires_at",
    "last_used_on",
    "scopes",
    "inferred_scopes",
    "autoscope_state",
    "next_deadline",
    "next_due_at",
    "days_left",
    "deadlines",
    "findings",
)


Consumers = Mapping[tuple[str, str], list[dict[str, Any]]]  # (workspace, token id) -> its consumers


def report_json(
    views: Iterable[TokenView], policy: Policy, now: datetime, consumers: Consumers | None = None
) -> Iterator[str]:
    """A JSON array, one token per line, nearest deadline first, in chunks of a thousand lines
    (a write per line costs a 100,000-token report about 0.2 s more when it goes into a pipe).
    `views` come in any order; see `_nearest_first` for how they are put in order. Each token has
    `shadow` (`bot.services.shadow`) and `consumers` (`bot.services.consumers.report_field`; []
    when none were seen or none given)."""
    yield "["
    separator = "\n"
    for chunk in _nearest_first(views, lambda ordered: _json_lines(ordered, policy, now, consumers or {})):
        yield separator + ",\n".join(chunk)
        separator = ",\n"
    yield "\n]\n"


def _json_lines(
    views: Iterable[TokenView], policy: Policy, now: datetime, consumers: Consumers
) -> Iterator[str]:
    """`contract_json`'s line of each view (one JSON object, "{...}") with its shadow and consumers
    added. `contract_json` takes one view per line it gives, so the tee holds one view at a time."""
    mine, theirs = tee(views)
    for view, line in zip(mine, contract_json(theirs, policy, now), strict=True):
        found = view.shadow
        used = consumers.get((view.workspace, view.token_id))
        yield (
            line[:-1]
            + ', "shadow": '
            + ("null" if found is None else json.dumps(shadow.as_json(found)))
            + ', "consumers": '
            + (json.dumps(used) if used else "[]")
            + "}"
        )


def report_csv(views: Iterable[TokenView], policy: Policy, now: datetime) -> Iterator[str]:
    """The CSV file, header first, then one row per token nearest deadline first, in chunks."""
    yield ",".join(CSV_COLUMNS) + "\r\n"
    for chunk in _nearest_first(views, lambda ordered: csv_rows(ordered, now)):
        yield "".join(chunk)


class _LastLine:
    """What a csv.writer wrote last: each `writerow` is one `write` of the whole row."""

    line = ""

    def write(self, text: str) -> None:
        self.line = text


def csv_rows(views: Iterable[TokenView], now: datetime) -> Iterator[str]:
    """One CSV row (CRLF-terminated) per view, in the order given. Only the cells that hold text
    from Databricks or people go through `_spreadsheet_safe`: the times, kinds and codes
    tokenbot writes itself never start with a formula character or hold a control character."""
    last = _LastLine()
    writer = csv.writer(last, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    text = lru_cache(maxsize=4096)(iso)  # many times repeat (see contract_rows)
    safe = _spreadsheet_safe
    scopes_text: dict[tuple[str, ...], str] = {}  # a few distinct scope lists (report._Decoder)
    for view in views:
        deadlines = view.evaluation.deadlines
        nearest = deadlines[0] if deadlines else None
        scopes = scopes_text.get(view.scopes)
        if scopes is None:
            scopes = scopes_text[view.scopes] = safe(" ".join(view.scopes))
        inferred = scopes_text.get(view.inferred_scopes)
        if inferred is None:
            inferred = scopes_text[view.inferred_scopes] = safe(" ".join(view.inferred_scopes))
        writer.writerow(
            (
                safe(view.workspace),
                safe(view.token_id),
                safe(view.owner or ""),
                safe(view.owner_slack_id or ""),
                safe(view.comment),
                text(view.created_at) or "",
                text(view.expires_at) or "",
                text(view.last_used_on) or "",
                scopes,
                inferred,
                safe(view.autoscope_state or ""),
                nearest.kind.value if nearest else "",
                text(nearest.due_at) if nearest else "",
                nearest.days_left(now) if nearest else "",
                "; ".join([f"{d.kind.value} {text(d.due_at)}" for d in deadlines]),
                " ".join(view.evaluation.finding_codes),
            )
        )
        yield last.line


CHUNK_ROWS = 1000


def _nearest_first(
    views: Iterable[TokenView], lines_of: Callable[[Iterable[TokenView]], Iterator[str]]
) -> Iterator[list[str]]:
    """The lines of the views, nearest deadline first, `CHUNK_ROWS` at a time.

    Each line is written to a temporary file as its view is read, and only its place and its
    deadline are kept (a few dozen bytes a token, not the view): then the lines are read back in
    order. Views that come in (workspace, token id) order keep that order between equal
    deadlines, as `report.by_nearest_deadline` does.
    """
    order: list[tuple[bool, datetime, int]] = []
    starts, sizes = array("q"), array("q")

    def noted() -> Iterator[TokenView]:
        for view in views:
            deadlines = view.evaluation.deadlines
            order.append((not deadlines, deadlines[0].due_at if deadlines else _EPOCH, len(order)))
            yield view

    with tempfile.TemporaryFile() as spool:
        position = 0
        for line in lines_of(noted()):
            data = line.encode()
            spool.write(data)
            starts.append(position)
            sizes.append(len(data))
            position += len(data)
        if not order:
            return
        spool.flush()
        order.sort()
        with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as written:
            for first in range(0, len(order), CHUNK_ROWS):
                yield [
                    written[starts[n] : starts[n] + sizes[n]].decode()
                    for _, _, n in order[first : first + CHUNK_ROWS]
                ]


FORMULA_STARTS = ("=", "+", "-", "@")
CONTROL_STARTS = ("\t", "\r", "\n")


def _spreadsheet_safe(text: str) -> str:
    """A cell of user text: never run by a spreadsheet as a formula, nor a terminal's command.
    Line breaks stay (the writer quotes the cell); other control characters go. A formula behind
    blanks counts too: some spreadsheets trim them."""
    cleaned = controls.strip(text, keep="\r\n")
    risky = text.startswith(CONTROL_STARTS) or cleaned.lstrip().startswith(FORMULA_STARTS)
    return "'" + cleaned if risky else cleaned
