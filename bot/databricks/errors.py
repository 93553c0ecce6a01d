"""Failures of the Databricks SDK and the network, translated into `GatewayError`s whose
messages say what went wrong and what to do about it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import requests
from databricks.sdk.errors import (
    BadRequest,
    DatabricksError,
    NotFound,
    PermissionDenied,
    TemporarilyUnavailable,
    TooManyRequests,
    Unauthenticated,
)
from urllib3.exceptions import NewConnectionError

from bot.databricks.records import GatewayError

T = TypeVar("T")


def translate_errors(action: str, function: Callable[[], T], *, host: str, timeout: int) -> T:
    """`function()`, with any failure of the SDK or the network raised as a GatewayError whose
    message names `action` and says what to do; `host` and `timeout` (the SDK's retry limit, in
    seconds) go into the messages."""
    try:
        return function()
    except GatewayError:
        raise
    except Unauthenticated as error:
        raise _auth_error(action, error) from None
    except PermissionDenied as error:
        if _credential_refused(error):
            raise _auth_error(action, error) from None
        raise GatewayError(
            "permission",
            f"{action}: permission denied ({first_line(error)}); the bot's "
            "identity must be a workspace admin to manage tokens",
        ) from None
    except NotFound as error:
        raise GatewayError("not_found", f"{action}: not found ({first_line(error)})") from None
    except BadRequest as error:
        raise GatewayError("bad_request", f"{action}: refused ({first_line(error)})") from None
    except (TooManyRequests, TemporarilyUnavailable) as error:
        raise GatewayError(
            "unavailable",
            f"{action}: Databricks is overloaded or unavailable "
            f"({first_line(error)}); retried until the "
            f"{timeout} s limit",
        ) from None
    except TimeoutError as error:
        if isinstance(error.__cause__, TooManyRequests | TemporarilyUnavailable):
            # The SDK gives up with a TimeoutError; what people need is the last answer.
            raise GatewayError(
                "unavailable",
                f"{action}: Databricks is overloaded or unavailable "
                f"({first_line(error.__cause__)}); retried for {timeout} s",
            ) from None
        raise GatewayError(
            "timeout",
            f"{action}: no answer within {timeout} s of retries "
            f"({first_line(error)}); check the host and the network",
            outcome_unknown=_maybe_applied(error.__cause__),
        ) from None
    except (requests.RequestException, OSError) as error:
        raise GatewayError(
            "unavailable",
            f"{action}: cannot reach {host} ({first_line(error)})",
            outcome_unknown=_maybe_applied(error),
        ) from None
    except DatabricksError as error:
        raise GatewayError("other", f"{action}: {first_line(error)}") from None


def _auth_error(action: str, error: DatabricksError) -> GatewayError:
    return GatewayError(
        "auth",
        f"{action}: authentication failed ({first_line(error)}); check the workspace's credentials",
    )


# A workspace refuses an unknown, revoked or expired token with HTTP 403 like a missing permission,
# and the SDK raises PermissionDenied for both; the body tells them apart: a refused credential has
# a numeric `error_code` (403) and "Invalid access token." / "JWT has expired" / "Invalid access to
# Org" (databricks-sdk-go issues #873, #917, #1061, #853), a missing permission `PERMISSION_DENIED`.
_REFUSED_CREDENTIAL_MESSAGES = ("invalid access token", "jwt has expired", "invalid access to org")


def _credential_refused(error: DatabricksError) -> bool:
    if error.error_code == "PERMISSION_DENIED":
        return False
    message = str(error).lower()
    return str(error.error_code) == "403" or any(text in message for text in _REFUSED_CREDENTIAL_MESSAGES)


def _maybe_applied(error: BaseException | None) -> bool:
    """Whether a request that failed this way may still have been applied: it was sent and no
    answer came back (a reset or dropped connection, a read timeout, a cut answer). Not when the
    connection could not even be opened, nor when Databricks answered (429, 503, ...)."""
    if isinstance(error, requests.ConnectTimeout):
        return False
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0] if error.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return not isinstance(reason, NewConnectionError)
    return isinstance(error, requests.Timeout | requests.exceptions.ChunkedEncodingError)


def first_line(error: BaseException) -> str:
    """The first line of an error's message (at most 300 characters), else its type's name."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
