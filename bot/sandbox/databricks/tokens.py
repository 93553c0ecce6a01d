"""Token management (admin: every token, on-behalf-of tokens for service principals) and the
token API of a user's own tokens, with Databricks' quota, lifetime and update-mask rules."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from bot.sandbox.databricks.errors import ApiError, bad_request, json_body, not_found
from bot.sandbox.databricks.state import (
    DEFAULT_TOKEN_LIFETIME,
    USER_SELECTED,
    Credential,
    DatabricksWorkspace,
    Principal,
    to_ms,
    token_json,
)
from bot.sandbox.server import Request, Response


class TokenApi(DatabricksWorkspace):
    """`/api/2.0/token-management/...` and `/api/2.0/token/...`."""

    token_quota: int

    # token management ---------------------------------------------------------------------------
    def _list_tokens(self, request: Request, caller: Principal) -> Response:
        by_id, by_name = request.arg("created_by_id"), request.arg("created_by_username")
        if by_id is not None and not by_id.isdigit():
            raise bad_request(f"created_by_id must be an integer, got {by_id!r}")
        infos = [
            info
            for info in self._tokens.values()
            if (by_id is None or info["created_by_id"] == int(by_id))
            and (by_name is None or (info["created_by_username"] or "").lower() == by_name.lower())
        ]
        return Response(body={"token_infos": [token_json(i) for i in infos]} if infos else {})

    def _get_token(self, request: Request, caller: Principal, token_id: str) -> Response:
        return Response(body={"token_info": token_json(self._token(token_id))})

    def _delete_token_route(self, request: Request, caller: Principal, token_id: str) -> Response:
        self._token(token_id)
        self._delete_token(token_id)
        return Response(body={})

    def _patch_token(self, request: Request, caller: Principal, token_id: str) -> Response:
        info = self._token(token_id)
        self._apply_update(info, json_body(request))
        return Response(body=token_json(info))  # the SDK reads a bare TokenInfo back

    def _apply_update(self, info: dict[str, Any], body: dict[str, Any]) -> None:
        mask = body.get("update_mask")
        if not isinstance(mask, str) or not mask:
            raise bad_request('update_mask is required, e.g. "scopes" or "comment,scopes".')
        paths = mask.split(",")
        wrong = [p for p in paths if p not in ("scopes", "comment")]
        if wrong:
            raise bad_request(f"update_mask may name only scopes and comment, not {', '.join(wrong)}.")
        token = body.get("token") if isinstance(body.get("token"), dict) else {}
        if "comment" in paths:
            info["comment"] = str(token.get("comment") or "")
        if "scopes" in paths:
            scopes = token.get("scopes") or []
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise bad_request("token.scopes must be a list of strings.")
            info["scopes"] = list(scopes)
            info["autoscope_state"] = USER_SELECTED

    def _create_obo_token(self, request: Request, caller: Principal) -> Response:
        body = json_body(request)
        application_id = body.get("application_id")
        if not application_id:
            raise bad_request("application_id is required.")
        sp = next((p for p in self._principals.values() if p.kind == "sp" and p.name == application_id), None)
        if sp is None or not sp.scim["active"]:
            raise not_found(f"Service principal with application id {application_id} does not exist.")
        value, info = self._issue_token(owner=sp, creator=caller, body=body)
        return Response(body={"token_value": value, "token_info": token_json(info)})

    def _issue_token(self, *, owner: Principal, creator: Principal, body: dict[str, Any]) -> tuple[str, dict]:
        if (self._conf.get("enableTokensConfig") or "true").lower() == "false":
            raise ApiError(403, "PERMISSION_DENIED", "Personal access tokens are disabled in this workspace.")
        if sum(1 for info in self._tokens.values() if info["owner_id"] == int(owner.id)) >= self.token_quota:
            raise ApiError(400, "QUOTA_EXCEEDED", f"Cannot create more than {self.token_quota} tokens.")
        now = to_ms(self._clock())
        value = "dapi" + secrets.token_hex(16)
        scopes = body.get("scopes") or []
        if scopes:
            autoscope_state = USER_SELECTED
        else:
            autoscope_state = "AUTOSCOPE_STATE_RUNNING" if body.get("autoscope_enabled") else None
        token_id = self.add_token(
            token_id=hashlib.sha256(value.encode()).hexdigest(),
            owner_id=owner.id,
            created_by=creator.id,
            comment=str(body.get("comment") or ""),
            created_at=now,
            expires_at=now + self._lifetime_ms(body.get("lifetime_seconds")),
            scopes=scopes,
            autoscope_state=autoscope_state,
        )
        self._credentials[value] = Credential(owner.id, admin=owner.id in self._admin_ids, token_id=token_id)
        return value, self._tokens[token_id]

    def _lifetime_ms(self, lifetime_seconds: Any) -> int:
        """Lifetime within the workspace's maxTokenLifetimeDays; none given means the maximum (2 years)."""
        max_days = self._conf.get("maxTokenLifetimeDays")
        max_seconds = int(max_days) * 86400 if max_days and max_days.isdigit() and int(max_days) > 0 else None
        try:
            lifetime = int(lifetime_seconds) if lifetime_seconds is not None else 0
        except (TypeError, ValueError):
            raise bad_request(f"lifetime_seconds must be an integer, got {lifetime_seconds!r}.") from None
        if lifetime <= 0:
            lifetime = int(DEFAULT_TOKEN_LIFETIME.total_seconds())
            return 1000 * (min(lifetime, max_seconds) if max_seconds else lifetime)
        if max_seconds and lifetime > max_seconds:
            raise bad_request(f"Token lifetime {lifetime}s exceeds the workspace maximum of {max_days} days.")
        return 1000 * lifetime

    # own tokens ---------------------------------------------------------------------------------
    def _own_token(self, caller: Principal, token_id: str) -> dict[str, Any]:
        info = self._tokens.get(token_id)
        if info is None or info["owner_id"] != int(caller.id):
            raise not_found(f"Token with id {token_id} does not exist.")
        return info

    def _create_own_token(self, request: Request, caller: Principal) -> Response:
        value, info = self._issue_token(owner=caller, creator=caller, body=json_body(request))
        return Response(body={"token_value": value, "token_info": _public_token_json(info)})

    def _list_own_tokens(self, request: Request, caller: Principal) -> Response:
        infos = [_public_token_json(i) for i in self._tokens.values() if i["owner_id"] == int(caller.id)]
        return Response(body={"token_infos": infos} if infos else {})

    def _delete_own_token(self, request: Request, caller: Principal) -> Response:
        token_id = str(json_body(request).get("token_id") or "")
        self._own_token(caller, token_id)
        self._delete_token(token_id)
        return Response(body={})

    def _patch_own_token(self, request: Request, caller: Principal, token_id: str) -> Response:
        self._apply_update(self._own_token(caller, token_id), json_body(request))
        return Response(body={})


def _public_token_json(info: Mapping[str, Any]) -> dict[str, Any]:
    keep = (
        "token_id",
        "comment",
        "creation_time",
        "expiry_time",
        "scopes",
        "inferred_scopes",
        "backfill_scopes",
        "autoscope_state",
    )
    return {k: v for k, v in token_json(info).items() if k in keep}
