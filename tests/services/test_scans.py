"""Whole-estate scans run in spawned worker processes (`bot.services.scans`): on the same
database, bounded in number, the database URL never on a command line, and a worker that dies
is a `ScanFailed` the next scan does not inherit."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from bot import db
from bot.services import scans
from tests.support import scan_jobs
from tests.support.bot_server import wait_for
from tests.support.estate import seed_edge_estate


def test_a_scan_runs_in_another_process_on_the_same_database(engine):
    seed_edge_estate(engine, 30)

    found = scans.run(engine, scan_jobs.whereabouts)

    assert found["pid"] != os.getpid()
    assert found["tokens"] == 400


def test_the_database_url_is_not_on_the_workers_command_line(engine):
    found = scans.run(engine, scan_jobs.whereabouts)

    assert "--multiprocessing-fork" in found["cmdline"]  # a spawned worker, really
    url = engine.url.render_as_string(hide_password=False)
    assert url not in found["cmdline"] and str(engine.url.database) not in found["cmdline"]


def test_no_more_scans_run_at_once_than_there_are_workers(engine):
    with ThreadPoolExecutor(scans.WORKERS + 2) as senders:
        pids = list(senders.map(lambda _: scans.run(engine, scan_jobs.pid_after, seconds=0.5), range(4)))

    assert len(set(pids)) <= scans.WORKERS


def test_a_worker_that_dies_fails_its_scan_and_the_next_scan_runs(engine):
    with pytest.raises(scans.ScanFailed, match="worker process ended"):
        scans.run(engine, scan_jobs.die)

    assert scans.run(engine, scan_jobs.whereabouts)["pid"] != os.getpid()


def test_the_workers_leave_when_their_server_is_killed(engine, database_url):
    server = subprocess.Popen(
        [sys.executable, "-c", scan_jobs.OWNER_OF_A_POOL, database_url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        worker = int(server.stdout.readline())
        assert _running(worker)
    finally:
        server.kill()  # no exit handler runs
        server.wait()

    wait_for(lambda: not _running(worker), timeout=30, what="the orphaned worker to leave")


def _running(pid: int) -> bool:
    """Alive, and not a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_an_error_in_a_scan_reaches_the_caller_as_itself(engine):
    with pytest.raises(LookupError, match="nothing to scan"):
        scans.run(engine, scan_jobs.refuse)


def test_an_in_memory_database_is_scanned_in_this_process():
    engine = db.make_engine("sqlite://")
    db.migrate(engine)

    found = scans.run(engine, scan_jobs.whereabouts)

    assert found["pid"] == os.getpid() and found["tokens"] == 0
    shared_memory = create_engine("sqlite:///file:scans?mode=memory&uri=true", poolclass=StaticPool)
    assert not scans.shareable(engine) and not scans.shareable(shared_memory)
