"""Reading a modal's submitted values (view_submission `state.values`)."""

from typing import Any

from bot.slack.blocks import modals
from bot.slack.ids import Block


def chosen_scopes(body: dict[str, Any]) -> list[str]:
    """The scopes picked in a Confirm or Restore scopes modal."""
    return selected(body, Block.SCOPES, modals.SCOPE_ACTION)


def selected(body: dict[str, Any], block_id: str, action_id: str) -> list[str]:
    element = _element(body, block_id, action_id)
    return [option["value"] for option in element.get("selected_options") or []]


def text(body: dict[str, Any], block_id: str, action_id: str) -> str:
    return (_element(body, block_id, action_id).get("value") or "").strip()


def _element(body: dict[str, Any], block_id: str, action_id: str) -> dict[str, Any]:
    values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    return (values.get(block_id) or {}).get(action_id) or {}
