"""The words of decisions: how an outcome names a token, a person, a moment and scopes, and the
longer sentences outcomes carry. Plain text, as typed: the Slack builders escape a message once
(`blocks.safe_text`) and keep the people it names as mentions (`bot.mentions`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from bot.domain.deadlines import DEADLINE_LABELS, DeadlineKind
from bot.domain.policy import Policy
from bot.mentions import who
from bot.models import Decision, Principal, Token
from bot.services.decisions.model import DeadlineRef, parse_time

if TYPE_CHECKING:
    from bot.services.decisions import rotation_steps


def label(token: Token) -> str:
    comment = " ".join((token.comment or "").split())
    if len(comment) > 40:
        comment = comment[:39] + "…"
    named = f" ({comment})" if comment else ""
    return f"token {token.token_id[:8]}{named} in {token.workspace}"


def sentence_label(token: Token) -> str:
    """`label` at the start of a sentence."""
    text = label(token)
    return text[:1].upper() + text[1:]


def scope_list(scopes: Iterable[str]) -> str:
    scopes = list(scopes)
    return ("scope " if len(scopes) == 1 else "scopes ") + ", ".join(scopes)


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"


def works_until(token: Token) -> str:
    """Until when an old token still works, for a sentence saying it does."""
    return f" until it expires on {when(token.expires_at)}" if token.expires_at else ""


def kind_words(kind: str) -> str:
    try:
        return DEADLINE_LABELS[DeadlineKind(kind)].lower() + " deadline"
    except ValueError:
        return "such deadline"


# ---------------------------------------------------------------------------------------------
# refusals any action may give

NOT_KNOWN = "tokenbot does not know this token; nothing was done."
ADMINS_ONLY = "Only an admin can do that."
OWNER_OR_ADMIN_ONLY = "Only the token's owner or an admin can do that."


def nothing_to_do(token: Token) -> str:
    return f"{gone(token)} Nothing to do."


def stale_reference(token: Token, deadline: DeadlineRef) -> str:
    return (
        f"This was out of date: tokenbot computes no {kind_words(deadline.kind)} on "
        f"{deadline.due_date.isoformat()} for {label(token)} now, so nothing was done. "
        "The message shows the current state; decide again from there."
    )


def busy(token: Token) -> str:
    return f"Someone else is deciding about {label(token)} right now; try again in a moment."


def in_progress(token: Token, earlier: Decision) -> str:
    """Another decision about the token is under way (its Databricks call has not answered yet)."""
    what = earlier.action.replace("_", " ")
    return (
        f"{who(earlier.actor_slack_id)} is already deciding about {label(token)} ({what}, started "
        f"{when(earlier.created_at)}); the outcome will show on the message. Nothing else was done."
    )


def gone(token: Token) -> str:
    if token.gone_reason == "expired":
        return f"{sentence_label(token)} had already expired."
    return f"{sentence_label(token)} was already gone (revoked by Databricks or someone else)."


def failed(what: str, error: str, tail: str = "") -> str:
    """A Databricks call failed: what could not be done, Databricks' words, and what now."""
    return f"{what}: {error}. {tail or 'Nothing was changed; you can try again.'}"


# ---------------------------------------------------------------------------------------------
# revoke


def revoked(token: Token) -> str:
    return f"Revoked {label(token)}."


def revoked_checked(token: Token) -> str:
    return (
        f"Revoked {label(token)}. Databricks' answer was lost on the way; tokenbot checked "
        "that the token no longer exists."
    )


def revoke_dry_run(token: Token) -> str:
    return f"Dry run: {label(token)} would have been revoked; nothing was changed."


def could_not_revoke(token: Token) -> str:
    return f"Could not revoke {label(token)}"


def revoked_already(token: Token, earlier: Decision) -> str:
    dry = " (dry run)" if earlier.parameters.get("dry_run") else ""
    return (
        f"{sentence_label(token)} was already revoked{dry} by {who(earlier.actor_slack_id)} "
        f"on {when(earlier.updated_at)}."
    )


def revoked_not_found(token: Token) -> str:
    return (
        f"{sentence_label(token)} is revoked: Databricks no longer has it (revoked earlier by "
        "Databricks or someone else, or by this request, whose first answer may have been lost)."
    )


def revoke_unchecked(verified: bool | None) -> str:
    """What tokenbot found after a DELETE whose answer was lost did not show it applied."""
    if verified is False:
        return "tokenbot checked: the token still exists and still works. You can try again."
    return (
        "tokenbot could not check whether it was revoked, so it may still work. Try again: "
        "revoking a token that is already gone is safe."
    )


# ---------------------------------------------------------------------------------------------
# scopes

NO_SCOPE = "Choose at least one scope."


def not_narrowed(token: Token) -> str:
    return f"{sentence_label(token)} was not narrowed by auto-scoping; use Confirm scopes instead."


def not_in_databricks(token: Token) -> str:
    return f"{sentence_label(token)} no longer exists in Databricks; nothing was changed."


def scopes_unchanged(token: Token) -> str:
    return f"{sentence_label(token)} already has exactly these scopes; nothing to change."


def scopes_dry_run(token: Token, after: list[str]) -> str:
    return f"Dry run: {label(token)} would now have {scope_list(after)}; nothing was changed."


def could_not_read_scopes(token: Token) -> str:
    return f"Could not read the current scopes of {label(token)}"


def could_not_set_scopes(token: Token) -> str:
    return f"Could not set the scopes of {label(token)}"


def scopes_set(token: Token, after: list[str], checked: bool) -> str:
    lost = (
        " Databricks' answer was lost on the way; tokenbot read the scopes back to check." if checked else ""
    )
    return (
        f"{sentence_label(token)} now has {scope_list(after)}.{lost} Scopes chosen by hand end auto-scoping "
        "for this token, and the change can take up to 10 minutes to take effect."
    )


def scopes_unchecked(verified: bool | None) -> str:
    """What tokenbot found after a PATCH whose answer was lost did not show it applied."""
    if verified is False:
        return "tokenbot read the token back: the new scopes were not set. Nothing was changed; try again."
    return "tokenbot could not read them back, so they may or may not have changed. Try again: it is safe."


def nothing_to_restore(token: Token) -> str:
    return (
        f"{sentence_label(token)} has full access (all-apis) in Databricks now; there is nothing to "
        "restore, and nothing was changed."
    )


def scopes_moved(token: Token, live: list[str]) -> str:
    return (
        f"{sentence_label(token)} has {scope_list(live)} in Databricks now, not "
        f"{scope_list(token.scopes)} as tokenbot showed; nothing was changed. Open Confirm scopes again "
        "to choose from its current scopes."
    )


def privileged_reason(privileged: list[str]) -> str:
    what = {"authentication": "can create new tokens", "all-apis": "gives full access to every API"}
    parts = [f"{scope} ({what.get(scope, 'privileged')})" for scope in privileged]
    return f"{' and '.join(parts)} needs an admin's approval"


def unknown_scopes(unknown: list[str]) -> str:
    return f"Unknown scope{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. Choose from the list."


# ---------------------------------------------------------------------------------------------
# accept, snooze, owners


def accepted_already(earlier: Decision) -> str:
    return f"Already accepted by {who(earlier.actor_slack_id)} on {when(earlier.updated_at)}."


def accepted(token: Token, deadline: DeadlineRef) -> str:
    day = deadline.due_date.isoformat()
    if deadline.kind == DeadlineKind.AUTOSCOPE_ENFORCEMENT:
        inferred = scope_list(token.inferred_scopes) if token.inferred_scopes else "the scopes it observed"
        return f"Accepted: on {day} Databricks narrows {label(token)} to {inferred}. No more reminders."
    return f"Noted: no more reminders about what happens to {label(token)} on {day}."


DEADLINE_PASSED = "The deadline has passed; there is nothing to snooze."


def snoozed_already(earlier: Decision) -> str:
    return f"Already snoozed until {when(parse_time(earlier.parameters['until']))}."


def snoozed(token: Token, until: datetime, tomorrow: bool) -> str:
    later = "tomorrow" if tomorrow else f"at {when(until)}, when it is due"
    return f"Snoozed: the next reminder about {label(token)} comes {later}."


OWNER_WANTED = "they will find the token's owner"  # why a Not mine goes to the admins


def not_a_user_id(text: str) -> str:
    return f"{text!r} is not a Slack user id (such as U012ABC)."


def no_owner(token: Token) -> str:
    return f"{sentence_label(token)} has no owner in Databricks to assign."


def owns_already(slack_id: str, token: Token) -> str:
    return f"{who(slack_id)} already owns {label(token)}."


def assigned(token: Token, principal: Principal, owner_slack_id: str, others: int) -> str:
    message = f"{who(owner_slack_id)} now owns {label(token)}."
    if others:
        name = principal.display_name or principal.email or principal.application_id or principal.principal_id
        message += f" This covers the {others} other live token(s) of {name} in {token.workspace} too."
    return message


# ---------------------------------------------------------------------------------------------
# extend


def days_out_of_range(most: int, limit: int) -> str:
    return f"Choose between 1 and {most} days (up to {limit} without an admin's approval)."


def over_limit(limit: int) -> str:
    return f"more than {limit} days needs an admin's approval"


def extended(token: Token, until: datetime) -> str:
    return f"Extended: tokenbot's policy leaves {label(token)} alone until {when(until)}."


def no_such_deadline(kind: str) -> str:
    return f"There is no deadline of kind {kind!r} to extend."


def extended_already(earlier: Decision) -> str:
    return (
        f"This deadline was already extended by {who(earlier.actor_slack_id)}, "
        f"until {when(parse_time(earlier.parameters['until']))}."
    )


def beyond_total(policy: Policy, original: datetime, cap: datetime) -> str:
    return (
        f"extensions beyond {policy.max_total_extension_days} days past the original deadline "
        f"({original.date().isoformat()}) need an admin's approval; without one you "
        f"could extend until {cap.date().isoformat()} at most"
    )


def not_extendable(
    token: Token, deadline: DeadlineRef, policy: Policy, service_principal: bool
) -> str | None:
    """Why this deadline cannot be lengthened, and what the owner can do instead; None when
    there is no such kind of deadline."""
    day = deadline.due_date.isoformat()
    if deadline.kind == DeadlineKind.EXPIRY:
        message = (
            f"Databricks cannot lengthen a token's life: it was fixed when {label(token)} was created. "
            f"Before {day}, create a new token and switch to it, or, for a job, move to OAuth "
            "machine-to-machine with a service principal, whose credentials renew themselves."
        )
        if service_principal:
            message += " An admin can also bind this service principal to a secret so tokenbot rotates it."
        return message
    if deadline.kind == DeadlineKind.INACTIVITY_REVOCATION:
        return (
            f"Databricks revokes tokens unused for {policy.inactivity_revocation_days} days and no "
            f"setting changes that for one token. Using {label(token)} once (any API call) before "
            f"{day} starts the {policy.inactivity_revocation_days} days again; if nothing uses it "
            "any more, let it go."
        )
    if deadline.kind == DeadlineKind.AUTOSCOPE_ENFORCEMENT:
        return (
            "Auto-scoping enforcement cannot be postponed. Accept the inferred scopes, or Confirm "
            "scopes to choose them yourself (this turns auto-scoping off for this token)."
        )
    return None


# ---------------------------------------------------------------------------------------------
# rotation


def rotate_dry_run(application_id: str, where: str) -> str:
    return (
        f"Dry run: a new token for {application_id} would have been written to {where}; nothing was changed."
    )


def could_not_read_secret(token: Token, where: str) -> str:
    return f"Could not read secret {where} before rotating {label(token)}"


def could_not_create(token: Token) -> str:
    return f"Could not create a new token for {label(token)}"


def could_not_write_secret(where: str) -> str:
    return f"Could not write the new token to secret {where}"


def rotated_already(token: Token, earlier: Decision, where: str) -> str:
    return (
        f"{sentence_label(token)} was already rotated by {who(earlier.actor_slack_id)} on "
        f"{when(earlier.updated_at)}; the new token is in {where}."
    )


SETTLED_NOT_WRITTEN = "The last rotation's new token never reached the secret (checked now) and was revoked. "


def rotation_unchecked(token: Token, earlier: Decision, where: str) -> str:
    return (
        f"The rotation of {label(token)} on {when(earlier.created_at)} is still unchecked: "
        f"tokenbot still cannot read secret {where}. Nothing was done; try again later."
    )


def rotation_checked(token: Token, earlier: Decision, where: str) -> str:
    return (
        f"tokenbot checked the rotation of {label(token)} made on {when(earlier.created_at)}: "
        f"its new token is in secret {where}. The old token will be revoked after "
        f"{when(parse_time(earlier.parameters['revoke_old_after']))}; make sure what uses it "
        "reads the secret by then."
    )


def rotated(
    token: Token, rotation: rotation_steps.Rotated, where: str, lifetime_days: int, revoke_after: datetime
) -> str:
    checked = (
        " Databricks' answer to the secret write was lost on the way; tokenbot checked that the "
        "secret was written."
        if rotation.answer_lost
        else ""
    )
    return (
        f"Rotated: a new token (valid {lifetime_days} days) is in secret "
        f"{where}.{checked} The old {label(token)} will be revoked after "
        f"{when(revoke_after)}; make sure what uses it reads the secret by then.{swept(rotation)}"
    )


def rotation_unknown(token: Token, rotation: rotation_steps.Rotated, where: str, error: str) -> str:
    return (
        f"Writing the new token {rotation.new_token_id} to secret {where} got no answer "
        f"({error}), and tokenbot could not read the secret to check. The new token is "
        f"kept, in case the secret holds it; the old {label(token)} still works{works_until(token)} "
        "and is not revoked until the new one is known to be in the secret. Retry to check again: "
        "tokenbot then keeps the rotation if the secret was written, or revokes the new token and "
        f"rotates again if not.{swept(rotation)}"
    )


def secret_not_written(token: Token, rotation: rotation_steps.Rotated) -> str:
    """The tail of a rotation whose secret write failed: what happened to the new token."""
    if rotation.new_token_revoked:
        cleanup = "The new token was revoked again; nothing was changed."
    else:
        cleanup = f"The new token {rotation.new_token_id} could not be revoked: revoke it by hand."
    if rotation.answer_lost:
        cleanup = (
            "Databricks' answer was lost on the way; tokenbot checked: the secret was not changed, "
            f"and the old token still works{works_until(token)}. {cleanup}"
        )
    return cleanup + swept(rotation)


def create_failed(rotation: rotation_steps.Rotated) -> str:
    """The tail of a rotation whose create failed: what tokenbot found at Databricks."""
    sweep = rotation.sweep
    if sweep.revoked or sweep.left:
        return f"{swept(rotation).strip()} The old token is unchanged; you can try again."
    if not rotation.answer_lost:
        return "Nothing was changed; you can try again."
    if sweep.checked:
        return "tokenbot checked: Databricks made no new token. Nothing was changed; you can try again."
    return (
        "tokenbot could not check whether Databricks made a new token anyway; the next attempt looks "
        "for it and revokes it. The old token is unchanged; you can try again."
    )


def swept(rotation: rotation_steps.Rotated) -> str:
    sweep = rotation.sweep
    words = ""
    if sweep.revoked:
        words += (
            f" Databricks had made {len(sweep.revoked)} token(s) for calls whose answer was lost "
            f"({', '.join(sweep.revoked)}); tokenbot found and revoked them."
        )
    if sweep.left:
        words += (
            f" Token(s) {', '.join(sweep.left)}, made by calls whose answer was lost, could not be "
            "revoked: revoke them by hand."
        )
    if not sweep.checked and rotation.new_token_id:
        words += " tokenbot could not list the tokens to check that Databricks made no second one."
    return words


# ---------------------------------------------------------------------------------------------
# requests to the admins


def request_waiting(token: Token, earlier: Decision) -> str:
    return (
        f"A request about {label(token)} from {who(earlier.actor_slack_id)} is already waiting for an admin."
    )


def denied_before(token: Token, denied: Decision) -> str:
    return (
        f"An admin ({who(denied.parameters.get('decided_by') or '?')}) already denied this request "
        f"about {label(token)} on {when(denied.updated_at)}; it cannot be sent again for the "
        "same deadline. Talk to the admins if something changed."
    )


def sent_to_admins(token: Token, why: str) -> str:
    return f"Sent to the admins: {why}. Nothing changes for {label(token)} until an admin decides."


ADMINS_DECIDE_REQUESTS = "Only an admin can approve or deny requests."
NO_SUCH_REQUEST = "There is no such request."
PICK_OWNER = "Pick the token's owner instead: approving a Not mine request needs a name."


def decided_already(status: str, decided_by: str) -> str:
    return f"This request was already {status} by {who(decided_by)}."


def denied(requester: str, token: Token) -> str:
    return f"Denied {who(requester)}'s request about {label(token)}."


# ---------------------------------------------------------------------------------------------
# retry

NOTHING_TO_RETRY = "There is no failed decision to retry here; nothing was done."
NOT_RETRYABLE = "This decision cannot be retried from here; decide again from the reminder."
