"""Slack's requests over HTTP (`POST /slack/events` of `serve --http`): the signature check and the
hand-over to the bolt app, for `bot.web.WebApp`, which owns the HTTP side (limits, routes, logging).
"""

from __future__ import annotations

from slack_bolt import App, BoltRequest
from slack_sdk.signature import SignatureVerifier

Headers = list[tuple[bytes, bytes]]


class SlackEndpoint:
    def __init__(self, bolt: App, signing_secret: str) -> None:
        self._bolt = bolt
        self._verifier = SignatureVerifier(signing_secret)

    def refusal(self, body: bytes, headers: dict[str, str]) -> tuple[int, str] | None:
        """None when the request is Slack-signed and fresh; else the status and why. Checked before
        the verifier, which raises on a timestamp that is not a number or a body that is not UTF-8."""
        stamp = headers.get("x-slack-request-timestamp", "").strip()
        if not stamp.isascii() or not stamp.isdigit():
            return 401, "invalid or expired Slack signature"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return 400, "request body is not UTF-8"
        if not self._verifier.is_valid(text, stamp, headers.get("x-slack-signature")):
            return 401, "invalid or expired Slack signature"
        return None

    def request(self, body: bytes, query: str, headers: dict[str, str]) -> BoltRequest:
        """The request for `dispatch`; ValueError when it is signed but not a payload Slack sends."""
        return BoltRequest(body=body.decode("utf-8"), query=query, headers=headers)

    def dispatch(self, request: BoltRequest) -> tuple[int, Headers, bytes]:
        """Run the listener up to its ack, which never waits on I/O (listeners/lazy.py); the answer."""
        response = self._bolt.dispatch(request)
        headers = [
            (k.encode(), v.encode())
            for k, values in response.headers.items()
            for v in values
            if k.lower() != "content-length"
        ]
        return response.status, headers, (response.body or "").encode()
