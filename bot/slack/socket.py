"""Socket Mode, the default of `tokenbot serve`: one WebSocket out to Slack carries its requests to
the bolt app, so the bot needs no public address.

slack_sdk's built-in client (no extra dependency) reconnects by itself after Slack's
`disconnect` message, a closed or reset socket, or missed pongs (every `SOCKET_PING` s).
"""

from __future__ import annotations

import threading

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

SOCKET_PING = 5  # seconds between Socket Mode pings; a connection silent for 4 of them is replaced


class ConnectionRefused(Exception):
    """The Socket Mode connection could not be opened; the message says what to fix."""


class SocketModeConnection:
    """The bolt app's Socket Mode connection: `connect()`, `is_connected()`, `close()`."""

    def __init__(self, bolt: App, app_token: str) -> None:
        self._handler = SocketModeHandler(bolt, app_token, ping_interval=SOCKET_PING)

    def connect(self) -> None:
        """Open the connection, or raise ConnectionRefused (the handler's threads are stopped)."""
        try:
            self._handler.connect()
        except SlackApiError as error:
            self.close()  # its threads would otherwise hold the exit up
            code = error.response.get("error") or f"HTTP {error.response.status_code}"
            raise ConnectionRefused(
                f"Slack refused to open a Socket Mode connection ({code}): check SLACK_APP_TOKEN (an "
                "app-level token with connections:write) and that Socket Mode is on in the app's settings"
            ) from None
        except Exception as error:
            self.close()
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ConnectionRefused(f"cannot open the Socket Mode connection: {first_line}") from None
        if not self.is_connected():
            # The client logs a failed WebSocket handshake and returns as if connected.
            self.close()
            raise ConnectionRefused(
                "Slack gave a Socket Mode URL but the WebSocket connection to it failed: check that the "
                "network (or a proxy) lets WebSocket connections to Slack through"
            )

    def is_connected(self) -> bool:
        return self._handler.client.is_connected()

    def close(self) -> None:
        close_handler(self._handler)


def close_handler(handler: SocketModeHandler) -> None:
    """`handler.close()`, made sure to end. slack_sdk's session runner sets `terminated = False`
    each time it enters a session that still looks active (builtin/client.py,
    `_run_current_session`); entered after close() set the stop but before its disconnect, it waits
    for a stop that never comes, and close() joins it forever (seen under load). So the stop is kept
    set until close() returns."""
    client = handler.client
    closing = threading.Thread(target=handler.close, name="socket-mode-close", daemon=True)
    closing.start()
    while closing.is_alive():
        client.current_session_state.terminated = True
        closing.join(0.05)
