"""The Databricks side of a rotation (`extension.extend` on a bound service principal's expiry):
create the new token, marked with the rotation's decision id, write its value to the bound secret,
and check every step whose answer was lost (`lost_answers`) so the decision records what is true.
No records and no words here: `rotation` and `wording` turn a `Rotated` into both.

The value exists only in this module's memory, between the create call and the secret write.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.databricks.records import GatewayError, WorkspaceGateway
from bot.services.decisions import lost_answers

# the step that failed
READ_SECRET, CREATE, WRITE_SECRET = "read_secret", "create", "write_secret"


@dataclass
class Rotated:
    """What a rotation did at Databricks, checked where an answer was lost."""

    failed_step: str | None = None  # None: the new token is in the secret
    error: GatewayError | None = None
    new_token_id: str | None = None
    stored: bool | None = False  # the secret holds the new token; None: nobody could check
    new_token_revoked: bool | None = None  # after a write that did not store it
    secret_before: datetime | None = None  # the secret's last write before this one
    sweep: lost_answers.Sweep = field(default_factory=lost_answers.Sweep)

    @property
    def answer_lost(self) -> bool:
        return self.error is not None and self.error.outcome_unknown


def create_and_store(
    gateway: WorkspaceGateway,
    *,
    decision_id: int,
    application_id: str,
    lifetime_seconds: int,
    comment: str,
    scopes: Sequence[str],
    scope: str,
    key: str,
    sweep_ids: Collection[int],
    keep: Collection[str] = (),
) -> Rotated:
    """Create the token and write it to `scope`/`key`. Every token marked by one of `sweep_ids`
    (this rotation and the token's earlier ones), except the new one and `keep`, is revoked:
    a create the SDK sent twice, or one whose answer was lost, made a token nobody holds."""
    done = Rotated()
    try:
        # Read first: after a lost answer, a later last_updated_timestamp shows the write landed.
        done.secret_before = gateway.secret_updated_at(scope, key)
    except GatewayError as error:
        done.failed_step, done.error = READ_SECRET, error
        return done
    try:
        created = gateway.create_obo_token(
            application_id,
            lifetime_seconds=lifetime_seconds,
            comment=lost_answers.marked(comment, decision_id),
            scopes=list(scopes),
        )
    except GatewayError as error:
        done.failed_step, done.error = CREATE, error
        done.sweep = lost_answers.sweep(gateway, sweep_ids, keep)
        return done
    done.new_token_id = created.token_id
    done.sweep = lost_answers.sweep(gateway, sweep_ids, {*keep, created.token_id})
    try:
        gateway.put_secret(scope, key, created.value)
    except GatewayError as error:
        done.failed_step, done.error = WRITE_SECRET, error
        if error.outcome_unknown:
            done.stored = lost_answers.secret_written(gateway, scope, key, done.secret_before)
        if done.stored is False:  # nothing half-applied: the unused new token goes again
            done.new_token_revoked = lost_answers.revoke(gateway, created.token_id)
        if done.stored:
            done.failed_step = None
        return done
    done.stored = True
    return done
