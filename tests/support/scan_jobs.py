"""Jobs for the tests of `bot.services.scans`: module-level, so a spawned worker can import them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from bot.models import Token


def whereabouts(*, session: Session) -> dict:
    """Which process ran the job, its command line, and what it read of the database."""
    return {
        "pid": os.getpid(),
        "cmdline": Path(f"/proc/{os.getpid()}/cmdline").read_bytes().replace(b"\0", b" ").decode(),
        "tokens": session.execute(select(func.count()).select_from(Token)).scalar_one(),
    }


def pid_after(*, session: Session, seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def die(*, session: Session, **_: object) -> None:
    """The worker ends mid-job, as when the system kills it for its memory."""
    os._exit(70)


def refuse(*, session: Session) -> None:
    raise LookupError("nothing to scan")


# A server in miniature, for the test that kills it: starts the workers, has one scan run, prints
# that worker's pid, and waits to be killed.
OWNER_OF_A_POOL = """
import sys, time
from bot import db
from bot.services import scans
from tests.support import scan_jobs
engine = db.make_engine(sys.argv[1])
scans.start(engine)
print(scans.run(engine, scan_jobs.whereabouts)["pid"], flush=True)
time.sleep(600)
"""
