"""The token report as files: a JSON array (`tokenbot report --format json`) and CSV (`--format
csv`, `/tokens export`). Both carry the contract rows of `bot.services.report`.

CSV follows RFC 4180 (CRLF rows, a field holding CR or LF quoted) and every text cell that a
spreadsheet would read as a formula (leading `= + - @`, tab, CR or LF) starts with a single quote
(OWASP, CSV injection); other control characters go (`bot.controls.strip`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from itertools import tee
from typing import Any

from sqlmodel import Session

from bot import controls
from bot.domain.deadlines import DeadlineKind
from bot.domain.policy import Policy
from bot.services import report, shadow, windows
from bot.services.report import TokenView, contract_json

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
        yield separator + b",\n".join(chunk).decode()
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
    for chunk in report_csv_bytes(views, policy, now):
        yield chunk.decode()


def report_csv_bytes(views: Iterable[TokenView], policy: Policy, now: datetime) -> Iterator[bytes]:
    """`report_csv` encoded (UTF-8), for a file: the rows go from the spool to the file as bytes."""
    yield CSV_HEADER.encode()
    for chunk in _nearest_first(views, lambda ordered: csv_rows(ordered, now)):
        yield b"".join(chunk)


def export_csv(*, session: Session, policy: Policy, now: datetime, path: str) -> int:
    """Write the CSV report of every live token to `path` (a new file); returns how many tokens it
    holds. A whole-estate scan: `/tokens export` runs it in a worker process (bot/services/scans.py)."""
    count = 0
    views = report.iter_views(session=session, policy=policy, now=now, order_by=windows.by_id(session))

    def counted() -> Iterator[TokenView]:
        nonlocal count
        for view in views:
            count += 1
            yield view

    with open(path, "xb") as file:
        file.writelines(report_csv_bytes(counted(), policy, now))
    return count


CSV_HEADER = ",".join(CSV_COLUMNS) + "\r\n"
# A kind's text, without Enum attribute access per row (slow in Python 3.11).
_KIND_TEXT = {kind: kind.value for kind in DeadlineKind}


def csv_rows(views: Iterable[TokenView], now: datetime) -> Iterator[str]:
    """One CSV row (CRLF-terminated) per view, in the order given, as `csv.writer` writes it
    (`_csv_cell`). Only the cells that hold text from Databricks or people go through
    `_spreadsheet_safe`: the times, kinds and codes tokenbot writes itself never start with a
    formula character nor hold a control character, a comma or a quote. Most texts repeat (a few
    workspaces and scope lists, owners with many tokens, last-use days): each is made once."""
    user_text = lru_cache(maxsize=8192)(_user_cell)
    when = lru_cache(maxsize=4096)(_when)
    scopes_cell = lru_cache(maxsize=1024)(_scopes_cell)
    kind_text = _KIND_TEXT
    for view in views:
        evaluation = view.evaluation
        deadlines = evaluation.deadlines
        if deadlines:
            nearest = deadlines[0]
            due = when(nearest.due_at)
            next_cells = f"{kind_text[nearest.kind]},{due},{(nearest.due_at - now).days}"
            listed = "; ".join([f"{kind_text[d.kind]} {when(d.due_at)}" for d in deadlines])
        else:
            next_cells, listed = ",,", ""
        token_id = view.token_id  # unique: a cache would only churn; most are plain hex
        yield (
            f"{user_text(view.workspace)},"
            f"{token_id if token_id.isalnum() else _user_cell(token_id)},"
            f"{user_text(view.owner or '')},"
            f"{user_text(view.owner_slack_id or '')},"
            f"{user_text(view.comment)},"
            f"{when(view.created_at)},{when(view.expires_at)},{when(view.last_used_on)},"
            f"{scopes_cell(view.scopes)},{scopes_cell(view.inferred_scopes)},"
            f"{user_text(view.autoscope_state or '')},"
            f"{next_cells},{listed},"
            f"{' '.join([finding.code for finding in evaluation.findings])}\r\n"
        )


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat().replace("+00:00", "Z")  # report.iso


def _scopes_cell(scopes: tuple[str, ...]) -> str:
    return _user_cell(" ".join(scopes))


def _user_cell(text: str) -> str:
    """A cell of text from Databricks or people: spreadsheet-safe, then as `csv.writer` writes it."""
    return _csv_cell(_spreadsheet_safe(text))


_QUOTED_WHEN = re.compile('[,"\r\n]')


def _csv_cell(text: str) -> str:
    """A cell as `csv.writer` (excel dialect, QUOTE_MINIMAL, CRLF) writes it in a row of several
    cells: in double quotes, each quote doubled, when it holds a comma, a quote, a CR or an LF."""
    if _QUOTED_WHEN.search(text) is None:
        return text
    return '"' + text.replace('"', '""') + '"'


CHUNK_ROWS = 1000


def _nearest_first(
    views: Iterable[TokenView], lines_of: Callable[[Iterable[TokenView]], Iterator[str]]
) -> Iterator[list[bytes]]:
    """The lines of the views, UTF-8 encoded, nearest deadline first, `CHUNK_ROWS` at a time.

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
        write, start, size = spool.write, starts.append, sizes.append
        for line in lines_of(noted()):
            data = line.encode()
            write(data)
            start(position)
            size(len(data))
            position += len(data)
        if not order:
            return
        spool.flush()
        order.sort()
        # Each line read back by itself (not through a map of the whole file, whose pages would
        # all count in this process's memory by the end).
        fileno = spool.fileno()
        for first in range(0, len(order), CHUNK_ROWS):
            yield [os.pread(fileno, sizes[n], starts[n]) for _, _, n in order[first : first + CHUNK_ROWS]]


FORMULA_STARTS = ("=", "+", "-", "@")
CONTROL_STARTS = ("\t", "\r", "\n")


def _spreadsheet_safe(text: str) -> str:
    """A cell of user text: never run by a spreadsheet as a formula, nor a terminal's command.
    Line breaks stay (the writer quotes the cell); other control characters go. A formula behind
    blanks counts too: some spreadsheets trim them."""
    cleaned = controls.strip(text, keep="\r\n")
    risky = text.startswith(CONTROL_STARTS) or cleaned.lstrip().startswith(FORMULA_STARTS)
    return "'" + cleaned if risky else cleaned
