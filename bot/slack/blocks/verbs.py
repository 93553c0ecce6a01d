"""What each decision is called where a message shows it was taken ("Revoked by @ada")."""

from bot.services import decisions

VERBS = {
    decisions.REVOKE: "Revoked",
    decisions.ACCEPT: "Accepted",
    decisions.CONFIRM_SCOPES: "Scopes confirmed",
    decisions.RESTORE: "Scopes restored",
    decisions.EXTEND: "Extended",
    decisions.ROTATE: "Rotated into its secret",
    decisions.SNOOZE: "Snoozed",
    decisions.NOT_MINE: "Handed to the admins",
    decisions.ASSIGN_OWNER: "Owner assigned",
}
