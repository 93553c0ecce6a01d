"""What the benchmarks that drive a real `tokenbot serve --http` share: a free local port, and the
server started as a subprocess and waited for until `/healthz` answers; and, to compare with, a
server that answers every request at once and does nothing else."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# uvicorn with an ASGI app that reads each request and answers 200 with an empty body: the least any
# Python server on this machine can do for the same clients.
ANSWER_ONLY = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def start_answer_only(log: IO[bytes], *, timeout: float) -> tuple[subprocess.Popen, str]:
    """The answer-only server as a subprocess; its process and base URL once it answers."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", ANSWER_ONLY, str(port)], stdout=subprocess.DEVNULL, stderr=log)
    return server, _answering(server, f"http://127.0.0.1:{port}", log, timeout)


def start_serve(env: dict[str, str], log: IO[bytes], *, timeout: float) -> tuple[subprocess.Popen, str]:
    """`tokenbot serve --http --no-scheduler` on a free port, its stderr into `log`; returns the
    process and its base URL once it answers, or exits with the end of its log."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--http", "--port", str(port), "--host", "127.0.0.1",
         "--no-scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    return server, _answering(server, f"http://127.0.0.1:{port}", log, timeout)


def _answering(server: subprocess.Popen, base: str, log: IO[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)  # noqa: S310 - our own local server
            return base
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                log.seek(0)
                sys.exit("the server did not start:\n" + log.read().decode()[-2000:])
            time.sleep(0.1)
