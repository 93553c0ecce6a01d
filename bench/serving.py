"""What the benchmarks that drive a real `tokenbot serve --http` share: a free local port, and the
server started as a subprocess and waited for until `/healthz` answers."""

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
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)  # noqa: S310 - our own local server
            return server, base
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                log.seek(0)
                sys.exit("serve --http did not start:\n" + log.read().decode()[-2000:])
            time.sleep(0.1)
