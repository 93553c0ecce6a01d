"""Interactive Block Kit elements the way Slack handles them: the ids it fills in, the element a
click names, and the state it reports for an element holding a value (in clicks and submissions)."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from bot.sandbox.slack.blockkit import ELEMENT_RULES

_MISSING = object()


def with_ids(blocks: list[Any]) -> list[Any]:
    """A copy with the `block_id`s and `action_id`s Slack fills in when a block or element has none."""
    blocks = copy.deepcopy(blocks)
    for block in blocks:
        if isinstance(block, dict):
            block.setdefault("block_id", secrets.token_urlsafe(3))
            for element in block_elements(block):
                if element.get("type") in ELEMENT_RULES and element["type"] != "image":
                    element.setdefault("action_id", secrets.token_urlsafe(3))
    return blocks


def block_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The interactive elements a block holds."""
    if block.get("type") == "actions":
        return [e for e in block.get("elements", []) if isinstance(e, dict)]
    if block.get("type") == "section" and isinstance(block.get("accessory"), dict):
        return [block["accessory"]]
    if block.get("type") == "input" and isinstance(block.get("element"), dict):
        return [block["element"]]
    return []


def find_element(blocks: list[Any], action_id: str, block_id: str | None) -> tuple[str, dict[str, Any]]:
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        for element in block_elements(block):
            if element.get("action_id") == action_id:
                return block["block_id"], element
    raise LookupError(
        f"no element with action_id {action_id!r}" + (f" in block {block_id!r}" if block_id else "")
    )


# element state: what Slack reports for an element holding `value` ---------------------------------
_SINGLE_OPTION = ("static_select", "external_select", "radio_buttons", "overflow")
_MULTI_OPTION = ("multi_static_select", "multi_external_select", "checkboxes")
_SELECTED_KEY = {
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
}
_INITIAL_KEY = {
    "users_select": "initial_user",
    "multi_users_select": "initial_users",
    "conversations_select": "initial_conversation",
    "multi_conversations_select": "initial_conversations",
    "channels_select": "initial_channel",
    "multi_channels_select": "initial_channels",
    "datepicker": "initial_date",
    "timepicker": "initial_time",
    "datetimepicker": "initial_date_time",
}


def _options_of(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option_for(element: dict[str, Any], value: Any) -> dict[str, Any]:
    for option in _options_of(element):
        if option.get("value") == value:
            return {"text": option["text"], "value": option["value"]}
    if element.get("type", "").endswith("external_select"):
        return {"text": {"type": "plain_text", "text": str(value), "emoji": True}, "value": str(value)}
    raise ValueError(f"{value!r} is not an option of {element.get('action_id')!r}")


def _initial_value(element: dict[str, Any]) -> Any:
    kind = element.get("type", "")
    if kind in _SINGLE_OPTION:
        return (element.get("initial_option") or {}).get("value")
    if kind in _MULTI_OPTION:
        return [option["value"] for option in element.get("initial_options") or []]
    if kind in _INITIAL_KEY:
        return element.get(_INITIAL_KEY[kind])
    return element.get("initial_value")


def _element_state(element: dict[str, Any], value: Any) -> dict[str, Any]:
    """The state Slack reports for an element holding `value` (None: nothing chosen)."""
    kind = element.get("type", "")
    if kind in _SINGLE_OPTION:
        return {"type": kind, "selected_option": None if value is None else _option_for(element, value)}
    if kind in _MULTI_OPTION:
        values = [value] if isinstance(value, str) else list(value or [])
        return {"type": kind, "selected_options": [_option_for(element, v) for v in values]}
    if kind in _SELECTED_KEY:
        multi = kind.startswith("multi_")
        if multi:
            value = [value] if isinstance(value, str) else list(value or [])
        return {"type": kind, _SELECTED_KEY[kind]: value}
    return {"type": kind, "value": None if value is None else str(value)}


def element_action(element: dict[str, Any], block_id: str, value: Any, action_ts: str) -> dict[str, Any]:
    """One entry of a block_actions payload's `actions`."""
    common = {"action_id": element["action_id"], "block_id": block_id, "action_ts": action_ts}
    if element.get("type") == "button":
        action = {
            "type": "button",
            "text": element["text"],
            "value": element.get("value") if value is None else str(value),
        }
        if "style" in element:
            action["style"] = element["style"]
        return action | common
    return _element_state(element, value) | common


def view_state(blocks: list[Any], values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`view.state.values`: every stateful element, holding the given value or its initial one."""
    state: dict[str, dict[str, Any]] = {}
    for block in blocks:
        for element in block_elements(block):
            if element.get("type") in ("button", "overflow", "workflow_button", "image"):
                continue
            block_id, action_id = block["block_id"], element["action_id"]
            given = values.get(block_id, {}).get(action_id, _MISSING)
            value = _initial_value(element) if given is _MISSING else given
            state.setdefault(block_id, {})[action_id] = _element_state(element, value)
    for block_id, actions in values.items():
        for action_id in actions:
            if action_id not in state.get(block_id, {}):
                raise LookupError(f"the view has no input {block_id}/{action_id}")
    return state
