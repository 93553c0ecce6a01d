"""Every Slack identifier tokenbot uses: action ids, view callback ids, block ids, commands.

Listeners are bound to these in one place per kind (`listeners/<kind>/__init__.py`), and the
manifest test checks the manifest against them.
"""

from enum import StrEnum

COMMAND = "/tokens"


class Action(StrEnum):
    """Buttons on a token (reminders, /tokens mine, App Home) and on approvals."""

    CONFIRM_SCOPES = "token_confirm_scopes"
    ACCEPT = "token_accept"
    EXTEND = "token_extend"
    REVOKE = "token_revoke"
    SNOOZE = "token_snooze"
    NOT_MINE = "token_not_mine"
    RESTORE_SCOPES = "token_restore_scopes"
    LOOKS_FINE = "token_looks_fine"
    RETRY = "decision_retry"
    APPROVE = "decision_approve"
    DENY = "decision_deny"
    ASSIGN_OWNER = "token_assign_owner"
    NEXT_PAGE = "tokens_next_page"  # the pager of a long /tokens answer
    PREVIOUS_PAGE = "tokens_previous_page"
    MISUSE_ACKNOWLEDGE = "misuse_acknowledge"  # a misuse finding in the admins channel
    MISUSE_REVOKE = "misuse_revoke"


class Subcommand(StrEnum):
    """The first word of `/tokens <subcommand> ...`."""

    HELP = "help"
    MINE = "mine"
    UPCOMING = "upcoming"
    SHOW = "show"
    REVOKE = "revoke"
    EXTEND = "extend"
    OWNER = "owner"
    WHOIS = "whois"
    RISKY = "risky"
    STALE = "stale"
    SYNC = "sync"
    DIGEST = "digest"
    POLICY = "policy"
    EXPORT = "export"
    ENFORCEMENT = "enforcement"


class Event(StrEnum):
    """Events API event types tokenbot subscribes to (manifest `bot_events`)."""

    APP_HOME_OPENED = "app_home_opened"


class View(StrEnum):
    """Modal callback ids."""

    CONFIRM_SCOPES = "confirm_scopes_modal"
    EXTEND = "extend_modal"
    RESTORE_SCOPES = "restore_scopes_modal"


class Block(StrEnum):
    """Block ids of modal inputs (their values come back under these)."""

    SCOPES = "scopes"
    DAYS = "days"
    REASON = "reason"


TOKEN_BLOCK_PREFIX = "token:"  # noqa: S105 (a block id, not a secret): the section of one token in a message: token:<reference>
