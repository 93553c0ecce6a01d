"""Decisions: what a button does (DESIGN.md section 4), checked, applied through Databricks and
recorded. No Slack here: the listeners call these functions and show `Outcome.message`.

Rules every function follows:

- Keyword-only arguments, session first; the caller gives a session (`session_scope()`) and its
  commit records the outcome. A decision that calls Databricks claims, calls, records
  (`ledger`): it commits its claim (`in_progress`) first and calls Databricks with no transaction
  open, so decisions on different tokens never wait for each other's calls; a claim a stopped
  process left is settled from what Databricks says (`claims`). Decisions that call nothing
  flush, never commit. Do not call one inside a SAVEPOINT.
- Authorization from the database on every call: the actor is the token's owner (the principal's
  `slack_user_id` or its admin-assigned `owner_slack_id`) or an admin (`Actor.is_admin`, decided by
  the caller from `slack.admins` / `admin_group`). `approve`, `deny` and `assign_owner` are for
  admins only. An unknown token, a stranger, or a token already gone is refused; nothing is called.
- Every attempt writes one `decision` row, refused ones included. Its status is `requested`
  (awaiting an admin), `in_progress` (claimed, its Databricks call under way), `applied`,
  `failed` (a Databricks error; the token row is unchanged),
  `refused` (parameters["refused"] says why: not_owner, not_admin, unknown_token, token_gone,
  invalid, duplicate, no_change, not_extendable, stale_reference, denied_before,
  stale), or, on a request an
  admin resolved, `approved` / `denied`. Decisions about a deadline carry `deadline_kind`, `due_date`
  (ISO date) and `due_at`: those of the deadline tokenbot computes now. A reference to any other
  (moved since the message, or made up) is refused as `stale_reference`.
- Dry run (`TOKENBOT_DRY_RUN`): `ledger.databricks()` is the one place that checks it; the decision
  is recorded `applied` with parameters["dry_run"] = true, and no mutating call is made.
- Token values are never stored, logged or put in a message: a rotated token's value exists only
  between the create call and the secret write (`CreatedToken.value`).
- A write whose answer was lost (`GatewayError.outcome_unknown`) is checked before anyone is told
  (`lost_answers`): a revoke reads the token (404 = revoked), a PATCH reads the scopes back, a
  rotation reads the secret's last write time and sweeps the tokens it marked. A rotation whose
  secret nobody could check stays `failed` with parameters["outcome"] = "unknown", keeping its new
  token and its key, until Retry or `complete_rotations` checks again.
- Messages are plain text naming people as Slack mentions (`<@U123>`, `bot.mentions`); their
  words live in `wording`.

Where things are:

- `model`: statuses, actions, roles; `Actor`, `DeadlineRef`, `Outcome`.
- `ledger`: authorization, the token lock, the idempotency keys and claims, the decision rows.
  `claims`: settling claims a stopped process left `in_progress`.
- `actions`: revoke, accept, snooze, not mine, assign owner. `scopes`: confirm and restore scopes.
  `extension`: extend (an exemption, a rotation, or why not). `rotation`: rotating a bound service
  principal's token and completing rotations (`rotation_steps`, `lost_answers`: the Databricks side).
- `requests`: asking the admins; `approvals`: their answer. `history`: retry, and what earlier
  decisions say to the reminders.

This package's face re-exports what callers use: `from bot.services import decisions`, then
`decisions.revoke(...)`, `decisions.Outcome`, `decisions.APPLIED`.
"""

from bot.services.decisions.actions import accept, assign_owner, not_mine, revoke, snooze
from bot.services.decisions.approvals import approve, deny
from bot.services.decisions.extension import extend
from bot.services.decisions.history import retry, snoozed_until, stops_reminders
from bot.services.decisions.ledger import may_decide
from bot.services.decisions.model import (
    ACCEPT,
    ADMIN,
    APPLIED,
    APPROVE,
    APPROVED,
    ASSIGN_OWNER,
    CONFIRM_SCOPES,
    DENIED,
    DENY,
    EXTEND,
    EXTENSION_LIMIT_DAYS,
    FAILED,
    IN_PROGRESS,
    NOT_MINE,
    OTHER,
    OWNER,
    REFUSED,
    REQUESTED,
    RESTORE,
    REVOKE,
    ROTATE,
    SETTLING_ACTIONS,
    SNOOZE,
    TOKENBOT,
    TOKENBOT_ROLE,
    Actor,
    DeadlineRef,
    Outcome,
)
from bot.services.decisions.rotation import complete_rotations
from bot.services.decisions.scopes import confirm_scopes, restore_scopes

__all__ = [
    "ACCEPT",
    "ADMIN",
    "APPLIED",
    "APPROVE",
    "APPROVED",
    "ASSIGN_OWNER",
    "CONFIRM_SCOPES",
    "DENIED",
    "DENY",
    "EXTEND",
    "EXTENSION_LIMIT_DAYS",
    "FAILED",
    "IN_PROGRESS",
    "NOT_MINE",
    "OTHER",
    "OWNER",
    "REFUSED",
    "REQUESTED",
    "RESTORE",
    "REVOKE",
    "ROTATE",
    "SETTLING_ACTIONS",
    "SNOOZE",
    "TOKENBOT",
    "TOKENBOT_ROLE",
    "Actor",
    "DeadlineRef",
    "Outcome",
    "accept",
    "approve",
    "assign_owner",
    "complete_rotations",
    "confirm_scopes",
    "deny",
    "extend",
    "may_decide",
    "not_mine",
    "restore_scopes",
    "retry",
    "revoke",
    "snooze",
    "snoozed_until",
    "stops_reminders",
]
