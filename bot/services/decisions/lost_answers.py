"""Writes whose answer was lost: Databricks may have applied them or not (DESIGN.md: "a write
whose outcome is unknown is verified before anyone is told").

A dropped connection or an answer slower than the client's timeout says nothing about the write:
the SDK retries it (a second create makes a second token; a second delete gets 404), and when
its retries run out the gateway raises a `GatewayError` with `outcome_unknown`. The checks here
read what Databricks has now instead: each says True (applied), False (not applied) or None (the
read failed too: still unknown).

Tokens that tokenbot creates carry `[tokenbot rotation <decision id>]` in their comment, so a
create whose answer was lost, or that the SDK sent twice, leaves no live token nobody knows of:
`sweep` finds every token marked by the given rotations and revokes those whose value tokenbot
does not hold (only the create's answer carries a value: such a token cannot be adopted).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.databricks.records import GatewayError, TokenRecord, WorkspaceGateway

logger = logging.getLogger(__name__)

MARK = re.compile(r"\s*\[tokenbot rotation (\d+)\]")


def marked(comment: str | None, decision_id: int) -> str:
    """The comment of a token made by rotation `decision_id`: the old comment, marked once."""
    return f"{unmarked(comment)} [tokenbot rotation {decision_id}]".strip()


def unmarked(comment: str | None) -> str:
    return MARK.sub("", comment or "").strip()


def marks(comment: str | None) -> set[int]:
    return {int(found) for found in MARK.findall(comment or "")}


def read_token(gateway: WorkspaceGateway, token_id: str) -> tuple[bool, TokenRecord | None]:
    """(whether Databricks answered, the token as it is now or None when it no longer exists)."""
    try:
        return True, gateway.get_token(token_id)
    except GatewayError as error:
        logger.warning("could not read token %s to check a lost answer: %s", token_id, error.message)
        return False, None


def gone(gateway: WorkspaceGateway, token_id: str) -> bool | None:
    """After a DELETE without an answer: 404 on a read means it was applied."""
    answered, record = read_token(gateway, token_id)
    return (record is None) if answered else None


def scopes_set(gateway: WorkspaceGateway, token_id: str, scopes: Sequence[str]) -> bool | None:
    """After a PATCH of scopes without an answer: the scopes read back are the ones sent."""
    answered, record = read_token(gateway, token_id)
    if not answered:
        return None
    return record is not None and sorted(record.scopes) == sorted(scopes)


def secret_written(gateway: WorkspaceGateway, scope: str, key: str, before: datetime | None) -> bool | None:
    """After a secrets/put without an answer: the key's last_updated_timestamp moved past `before`
    (read just before the write, from the same Databricks clock; None = the key did not exist)."""
    try:
        after = gateway.secret_updated_at(scope, key)
    except GatewayError as error:
        logger.warning("could not read secret %s/%s to check a lost answer: %s", scope, key, error.message)
        return None
    return after is not None and (before is None or after > before)


def revoke(gateway: WorkspaceGateway, token_id: str) -> bool | None:
    """Revoke a token tokenbot created and does not keep: True once it is verifiably gone."""
    try:
        gateway.delete_token(token_id)  # False (already gone) is as good
        return True
    except GatewayError as error:
        logger.warning("could not revoke token %s: %s", token_id, error.message)
        return gone(gateway, token_id) if error.outcome_unknown else False


@dataclass
class Sweep:
    """What a search for marked tokens found: revoked ones, ones still live, and whether it ran."""

    checked: bool = False
    revoked: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def sweep(gateway: WorkspaceGateway, decision_ids: Collection[int], keep: Collection[str] = ()) -> Sweep:
    """Revoke every token marked by one of `decision_ids`, except those in `keep`."""
    try:
        tokens = gateway.list_tokens()
    except GatewayError as error:
        logger.warning("could not list tokens to look for unknown rotation tokens: %s", error.message)
        return Sweep()
    found = Sweep(checked=True)
    for token in tokens:
        if token.token_id in keep or not marks(token.comment) & set(decision_ids):
            continue
        (found.revoked if revoke(gateway, token.token_id) else found.left).append(token.token_id)
    if found.revoked or found.left:
        logger.warning(
            "rotations %s: revoked %s token(s) nobody held, %s could not be revoked",
            sorted(decision_ids),
            len(found.revoked),
            len(found.left),
        )
    return found
