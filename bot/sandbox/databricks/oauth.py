"""OAuth M2M as a workspace serves it: the host metadata every SDK client reads first, OIDC
discovery, and the client-credentials token endpoint."""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import timedelta

from bot.sandbox.databricks.state import ADMIN_USER_ID, Credential, DatabricksWorkspace
from bot.sandbox.server import Request, Response


class OAuthApi(DatabricksWorkspace):
    """`/.well-known/databricks-config` and `/oidc/...` (public: no credential needed)."""

    oauth_token_lifetime: float

    # OAuth ------------------------------------------------------------------------------------------
    def _well_known(self, request: Request, caller: None) -> Response:
        """Host metadata, public, which every SDK client reads first (`Config._resolve_host_metadata`
        in databricks-sdk 0.162; a failure only logs "Failed to automatically resolve config from
        host metadata ... Falling back"). The SDK reads `oidc_endpoint` (the OIDC root: it appends
        `/.well-known/oauth-authorization-server`), `account_id`, `workspace_id` (a string), `cloud`
        and `token_federation_default_oidc_audiences` (`oauth.HostMetadata`). A workspace host names
        its own `/oidc` and both ids (databricks-sdk-go `config/host_metadata_test.go`), and
        `host_type` "workspace" (databricks-sdk-java PR #747; the Go SDK lower-cases it). The
        audiences list is left out: its value for a workspace is not public (*unconfirmed*)."""
        return Response(
            body={
                "oidc_endpoint": f"{self.url}/oidc",
                "account_id": self.account_id,
                "workspace_id": str(self.workspace_id),
                "cloud": "AWS",
                "host_type": "workspace",
            }
        )

    def _oidc_discovery(self, request: Request, caller: None) -> Response:
        base = f"{self.url}/oidc"
        return Response(
            body={
                "issuer": base,
                "authorization_endpoint": f"{base}/v1/authorize",
                "token_endpoint": f"{base}/v1/token",
                "jwks_uri": f"{base}/jwks.json",
                "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            }
        )

    def _oidc_token(self, request: Request, caller: None) -> Response:
        client_id, client_secret = request.form.get("client_id"), request.form.get("client_secret")
        scheme, _, encoded = (request.header("authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = None
        if request.form.get("grant_type") != "client_credentials":
            return Response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Only client_credentials is emulated.",
                },
            )
        if not client_id or self._oauth_clients.get(client_id) != client_secret:
            return Response(
                401, {"error": "invalid_client", "error_description": "Client authentication failed."}
            )
        access_token = "eyJsandbox." + secrets.token_urlsafe(32)
        sp = next((p for p in self._principals.values() if p.kind == "sp" and p.name == client_id), None)
        principal_id = sp.id if sp else ADMIN_USER_ID
        self._admin_ids.add(principal_id)
        # Access tokens expire (`expires_in`), then are refused with "JWT has expired"; there is no
        # refresh token for client_credentials: the SDK asks again (oauth.ClientCredentials), and
        # counts a token as expired 40 s before `expires_in` runs out (oauth.Token.expired).
        lifetime = timedelta(seconds=self.oauth_token_lifetime)
        self._credentials[access_token] = Credential(
            principal_id, admin=True, expires_at=self._clock() + lifetime
        )
        return Response(
            body={
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": int(self.oauth_token_lifetime),
                "scope": request.form.get("scope", "all-apis"),
            }
        )
