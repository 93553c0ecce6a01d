"""Block Kit validation as Slack does it: a table of fields per block and element type, checked by
one small walker, with Slack's error strings ("<problem> [json-pointer:/blocks/0/text/text]")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.slack.limits import MESSAGE_BLOCK_LIMIT, VIEW_BLOCK_LIMIT


@dataclass(frozen=True)
class _Field:
    """How one property of a block or element is checked.

    kind: "str", "plain" (plain_text object), "text" (plain_text or mrkdwn object), "texts" (list
    of text objects), "element", "elements", "options", "rich_options" (option text may be mrkdwn),
    "option", "option_groups", "confirm", "enum", "bool", "int", "any".
    """

    kind: str
    limit: int = 0  # characters for strings and text objects, items for lists
    required: bool = False
    allowed: frozenset[str] = frozenset()  # element types, or enum values
    item_limit: int = 0  # characters of each item of a "texts" list
    minimum: int = 1  # items for lists


def _f(
    kind: str,
    limit: int = 0,
    *,
    required: bool = False,
    allowed: Iterable[str] = (),
    item_limit: int = 0,
    minimum: int = 1,
) -> _Field:
    return _Field(kind, limit, required, frozenset(allowed), item_limit, minimum)


_ID = _f("str", 255)
_PLACEHOLDER = _f("plain", 150)
_CONFIRM = _f("confirm")
_SINGLE_SELECTS = (
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
)
_MULTI_SELECTS = tuple("multi_" + name for name in _SINGLE_SELECTS)
_PICKERS = ("datepicker", "timepicker", "datetimepicker")
_TEXT_INPUTS = ("plain_text_input", "email_text_input", "url_text_input", "number_input", "rich_text_input")

ACTION_ELEMENTS = frozenset(
    (
        "button",
        "overflow",
        "checkboxes",
        "radio_buttons",
        "workflow_button",
        *_SINGLE_SELECTS,
        *_MULTI_SELECTS,
        *_PICKERS,
        "rich_text_input",
    )
)
INPUT_ELEMENTS = frozenset(
    ("checkboxes", "radio_buttons", "file_input", *_SINGLE_SELECTS, *_MULTI_SELECTS, *_PICKERS, *_TEXT_INPUTS)
)
SECTION_ACCESSORIES = frozenset(
    (
        "button",
        "overflow",
        "checkboxes",
        "radio_buttons",
        "image",
        "workflow_button",
        *_SINGLE_SELECTS,
        *_MULTI_SELECTS,
        *_PICKERS,
    )
)


def _select_rules(multi: bool, options: bool) -> dict[str, _Field]:
    rules = {"action_id": _ID, "placeholder": _PLACEHOLDER, "confirm": _CONFIRM, "focus_on_load": _f("bool")}
    if options:
        rules |= {"options": _f("options", 100), "option_groups": _f("option_groups", 100)}
        rules |= {"initial_options": _f("options", 100)} if multi else {"initial_option": _f("option")}
    if multi:
        rules["max_selected_items"] = _f("int")
    return rules


ELEMENT_RULES: dict[str, dict[str, _Field]] = {
    "button": {
        "action_id": _ID,
        "text": _f("plain", 75, required=True),
        "value": _f("str", 2000),
        "url": _f("str", 3000),
        "style": _f("enum", allowed=("primary", "danger")),
        "confirm": _CONFIRM,
        "accessibility_label": _f("str", 75),
    },
    "static_select": _select_rules(multi=False, options=True),
    "multi_static_select": _select_rules(multi=True, options=True),
    "external_select": _select_rules(multi=False, options=False) | {"initial_option": _f("option")},
    "multi_external_select": _select_rules(multi=True, options=False)
    | {"initial_options": _f("options", 100)},
    "users_select": _select_rules(multi=False, options=False) | {"initial_user": _f("str", 255)},
    "multi_users_select": _select_rules(multi=True, options=False),
    "conversations_select": _select_rules(multi=False, options=False),
    "multi_conversations_select": _select_rules(multi=True, options=False),
    "channels_select": _select_rules(multi=False, options=False),
    "multi_channels_select": _select_rules(multi=True, options=False),
    "overflow": {"action_id": _ID, "options": _f("options", 5, required=True), "confirm": _CONFIRM},
    "checkboxes": {
        "action_id": _ID,
        "options": _f("rich_options", 10, required=True),
        "initial_options": _f("rich_options", 10),
        "confirm": _CONFIRM,
    },
    "radio_buttons": {
        "action_id": _ID,
        "options": _f("rich_options", 10, required=True),
        "initial_option": _f("option"),
        "confirm": _CONFIRM,
    },
    "datepicker": {
        "action_id": _ID,
        "initial_date": _f("str", 10),
        "placeholder": _PLACEHOLDER,
        "confirm": _CONFIRM,
    },
    "timepicker": {
        "action_id": _ID,
        "initial_time": _f("str", 5),
        "placeholder": _PLACEHOLDER,
        "confirm": _CONFIRM,
    },
    "datetimepicker": {"action_id": _ID, "initial_date_time": _f("int"), "confirm": _CONFIRM},
    "plain_text_input": {
        "action_id": _ID,
        "placeholder": _PLACEHOLDER,
        "initial_value": _f("str", 3000),
        "multiline": _f("bool"),
        "min_length": _f("int"),
        "max_length": _f("int"),
    },
    "email_text_input": {"action_id": _ID, "placeholder": _PLACEHOLDER, "initial_value": _f("str", 320)},
    "url_text_input": {"action_id": _ID, "placeholder": _PLACEHOLDER, "initial_value": _f("str", 3000)},
    "number_input": {
        "action_id": _ID,
        "is_decimal_allowed": _f("bool", required=True),
        "placeholder": _PLACEHOLDER,
        "initial_value": _f("str", 255),
        "min_value": _f("str", 255),
        "max_value": _f("str", 255),
    },
    "rich_text_input": {"action_id": _ID, "placeholder": _PLACEHOLDER},
    "file_input": {"action_id": _ID, "max_files": _f("int")},
    "workflow_button": {
        "action_id": _ID,
        "text": _f("plain", 75, required=True),
        "workflow": _f("any", required=True),
    },
    "image": {
        "alt_text": _f("str", 2000, required=True),
        "image_url": _f("str", 3000),
        "slack_file": _f("any"),
    },
}

BLOCK_RULES: dict[str, dict[str, _Field]] = {
    "section": {
        "block_id": _ID,
        "text": _f("text", 3000),
        "fields": _f("texts", 10, item_limit=2000),
        "accessory": _f("element", allowed=SECTION_ACCESSORIES),
        "expand": _f("bool"),
    },
    "actions": {"block_id": _ID, "elements": _f("elements", 25, required=True, allowed=ACTION_ELEMENTS)},
    "header": {"block_id": _ID, "text": _f("plain", 150, required=True)},
    "context": {
        "block_id": _ID,
        "elements": _f("elements", 10, required=True, allowed=("plain_text", "mrkdwn", "image")),
    },
    "divider": {"block_id": _ID},
    "input": {
        "block_id": _ID,
        "label": _f("plain", 2000, required=True),
        "hint": _f("plain", 2000),
        "element": _f("element", required=True, allowed=INPUT_ELEMENTS),
        "optional": _f("bool"),
        "dispatch_action": _f("bool"),
    },
    "image": {
        "block_id": _ID,
        "alt_text": _f("str", 2000, required=True),
        "image_url": _f("str", 3000),
        "slack_file": _f("any"),
        "title": _f("plain", 2000),
    },
    "rich_text": {"block_id": _ID, "elements": _f("any", required=True)},
    "markdown": {"block_id": _ID, "text": _f("str", 12000, required=True)},
    "file": {
        "block_id": _ID,
        "external_id": _f("str", 255, required=True),
        "source": _f("str", 255, required=True),
    },
    "video": {
        "block_id": _ID,
        "alt_text": _f("str", 2000, required=True),
        "title": _f("plain", 200, required=True),
        "video_url": _f("str", 3000, required=True),
        "thumbnail_url": _f("str", 3000, required=True),
    },
}

# Objects that need one of several properties (Slack: "must provide one of ...").
ONE_OF: dict[str, tuple[str, ...]] = {
    "section": ("text", "fields"),
    "image": ("image_url", "slack_file"),
    "static_select": ("options", "option_groups"),
    "multi_static_select": ("options", "option_groups"),
}

VIEW_RULES: dict[str, _Field] = {
    "title": _f("plain", 24),
    "submit": _f("plain", 24),
    "close": _f("plain", 24),
    "private_metadata": _f("str", 3000),
    "callback_id": _f("str", 255),
    "external_id": _f("str", 255),
    "clear_on_close": _f("bool"),
    "notify_on_close": _f("bool"),
}


class _Validator:
    """Collects Slack-style error strings while walking a block list."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, problem: str, pointer: str) -> None:
        self.errors.append(f"{problem} [json-pointer:{pointer}]")

    def blocks(self, blocks: Any, pointer: str, limit: int) -> None:
        if not isinstance(blocks, list):
            self.error("must be an array", pointer)
            return
        if len(blocks) > limit:
            self.error(f"no more than {limit} items allowed", pointer)
        seen: set[str] = set()
        for index, block in enumerate(blocks):
            self.block(block, f"{pointer}/{index}")
            block_id = block.get("block_id") if isinstance(block, dict) else None
            if block_id is not None and block_id in seen:
                self.error(f"duplicate block_id: {block_id}", f"{pointer}/{index}/block_id")
            seen.add(block_id)

    def block(self, block: Any, pointer: str) -> None:
        self.typed(block, BLOCK_RULES, frozenset(BLOCK_RULES), pointer)

    def typed(
        self, obj: Any, table: dict[str, dict[str, _Field]], allowed: frozenset[str], pointer: str
    ) -> None:
        """An object with a `type` looked up in `table` (a block or an element)."""
        if not isinstance(obj, dict):
            self.error("must be an object", pointer)
            return
        kind = obj.get("type")
        if kind not in allowed or kind not in table:
            self.error(f"unsupported type: {kind}", f"{pointer}/type")
            return
        self.fields(obj, table[kind], pointer)
        needed = ONE_OF.get(kind)
        if needed and not any(obj.get(name) for name in needed):
            self.error(f"must provide one of: {', '.join(needed)}", pointer)

    def fields(self, obj: dict[str, Any], rules: dict[str, _Field], pointer: str) -> None:
        for name, rule in rules.items():
            if name not in obj or obj[name] is None:
                if rule.required:
                    self.error(f"missing required field: {name}", pointer)
                continue
            self.value(obj[name], rule, f"{pointer}/{name}")

    def value(self, value: Any, rule: _Field, pointer: str) -> None:
        check = getattr(self, f"_check_{rule.kind}")
        check(value, rule, pointer)

    # one checker per _Field.kind ------------------------------------------------------------------
    def _check_any(self, value: Any, rule: _Field, pointer: str) -> None:
        pass

    def _check_str(self, value: Any, rule: _Field, pointer: str) -> None:
        if not isinstance(value, str):
            self.error("must be a string", pointer)
        elif rule.limit and len(value) > rule.limit:
            self.error(f"must be less than {rule.limit + 1} characters", pointer)

    def _check_bool(self, value: Any, rule: _Field, pointer: str) -> None:
        if not isinstance(value, bool):
            self.error("must be a boolean", pointer)

    def _check_int(self, value: Any, rule: _Field, pointer: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error("must be an integer", pointer)

    def _check_enum(self, value: Any, rule: _Field, pointer: str) -> None:
        if value not in rule.allowed:
            self.error(f"must be one of: {', '.join(sorted(rule.allowed))}", pointer)

    def _check_text(
        self,
        value: Any,
        rule: _Field,
        pointer: str,
        kinds: tuple[str, ...] = ("plain_text", "mrkdwn"),
        limit: int | None = None,
    ) -> None:
        limit = rule.limit if limit is None else limit
        if not isinstance(value, dict):
            self.error("must be a text object", pointer)
            return
        if value.get("type") not in kinds:
            self.error(f"must be one of: {', '.join(kinds)}", f"{pointer}/type")
        text = value.get("text")
        if not isinstance(text, str) or not text:
            self.error("must be more than 0 characters", f"{pointer}/text")
        elif limit and len(text) > limit:
            self.error(f"must be less than {limit + 1} characters", f"{pointer}/text")

    def _check_plain(self, value: Any, rule: _Field, pointer: str) -> None:
        self._check_text(value, rule, pointer, kinds=("plain_text",))

    def _check_texts(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, item in enumerate(self._items(value, rule, pointer)):
            self._check_text(item, rule, f"{pointer}/{index}", limit=rule.item_limit)

    def _check_element(self, value: Any, rule: _Field, pointer: str) -> None:
        self.typed(value, ELEMENT_RULES, rule.allowed, pointer)

    def _check_elements(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, item in enumerate(self._items(value, rule, pointer)):
            item_pointer = f"{pointer}/{index}"
            if (
                isinstance(item, dict)
                and item.get("type") in ("plain_text", "mrkdwn")
                and item["type"] in rule.allowed
            ):
                self._check_text(item, rule, item_pointer, limit=3000)
            else:
                self._check_element(item, rule, item_pointer)

    def _check_option(
        self, value: Any, rule: _Field, pointer: str, text_kinds: tuple[str, ...] = ("plain_text",)
    ) -> None:
        if not isinstance(value, dict):
            self.error("must be an option object", pointer)
            return
        if "text" not in value:
            self.error("missing required field: text", pointer)
        else:
            self._check_text(value["text"], rule, f"{pointer}/text", kinds=text_kinds, limit=75)
        if not isinstance(value.get("value"), str):
            self.error("missing required field: value", pointer)
        elif len(value["value"]) > 150:
            self.error("must be less than 151 characters", f"{pointer}/value")

    def _check_options(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, item in enumerate(self._items(value, rule, pointer)):
            self._check_option(item, rule, f"{pointer}/{index}")

    def _check_rich_options(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, item in enumerate(self._items(value, rule, pointer)):
            self._check_option(item, rule, f"{pointer}/{index}", text_kinds=("plain_text", "mrkdwn"))

    def _check_option_groups(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, group in enumerate(self._items(value, rule, pointer)):
            group_pointer = f"{pointer}/{index}"
            if not isinstance(group, dict):
                self.error("must be an option group object", group_pointer)
                continue
            self.fields(
                group,
                {"label": _f("plain", 75, required=True), "options": _f("options", 100, required=True)},
                group_pointer,
            )

    def _check_confirm(self, value: Any, rule: _Field, pointer: str) -> None:
        if not isinstance(value, dict):
            self.error("must be a confirmation object", pointer)
            return
        self.fields(
            value,
            {
                "title": _f("plain", 100, required=True),
                "text": _f("text", 300, required=True),
                "confirm": _f("plain", 30, required=True),
                "deny": _f("plain", 30, required=True),
                "style": _f("enum", allowed=("primary", "danger")),
            },
            pointer,
        )

    def _items(self, value: Any, rule: _Field, pointer: str) -> list[Any]:
        if not isinstance(value, list):
            self.error("must be an array", pointer)
            return []
        if len(value) < rule.minimum:
            self.error(f"must provide at least {rule.minimum} items", pointer)
        if rule.limit and len(value) > rule.limit:
            self.error(f"no more than {rule.limit} items allowed", pointer)
        return value


def validate_blocks(blocks: Any, *, limit: int = MESSAGE_BLOCK_LIMIT, pointer: str = "/blocks") -> list[str]:
    """Slack's complaints about a block list (empty when valid)."""
    validator = _Validator()
    validator.blocks(blocks, pointer, limit)
    return validator.errors


def validate_view(view: Any) -> list[str]:
    """Slack's complaints about a modal or Home tab view (empty when valid)."""
    validator = _Validator()
    if not isinstance(view, dict):
        validator.error("must be an object", "/view")
        return validator.errors
    kind = view.get("type")
    if kind not in ("modal", "home"):
        validator.error("must be one of: home, modal", "/view/type")
    validator.fields(view, VIEW_RULES, "/view")
    if kind == "modal" and "title" not in view:
        validator.error("missing required field: title", "/view")
    blocks = view.get("blocks")
    if blocks is None:
        validator.error("missing required field: blocks", "/view")
        return validator.errors
    validator.blocks(blocks, "/view/blocks", VIEW_BLOCK_LIMIT)
    if kind == "modal" and not view.get("submit") and isinstance(blocks, list):
        for index, block in enumerate(blocks):
            if isinstance(block, dict) and block.get("type") == "input":
                validator.error(
                    "must define `submit` to use an `input` block in modals", f"/view/blocks/{index}/input"
                )
                break
    return validator.errors
