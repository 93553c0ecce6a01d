"""Whole-estate scans (`/tokens export`, the ranking of `/tokens risky`) in worker processes.

Reading and evaluating 100,000 tokens is seconds of Python: in the serving process it holds the
interpreter lock against every other request (an owner's click, a Home, a short list), and two
scans at once take as long as one after the other. A worker process runs on another core and
leaves the server's interpreter to the short requests.

The workers are spawned, not forked (the server has threads, whose locks a fork would copy held),
when the app is built (`start`), and stay: at most `WORKERS` scans run at once, later ones wait
their turn. Each job gets the database URL through the pool's pipe (never a command line), opens
an engine of its own and disposes of it after (no connection outlives the job). A worker that
dies (killed for its memory, a crash) fails its job with `ScanFailed`, and the next job gets a new
pool; a worker whose server dies leaves too. An in-memory SQLite database exists only in this
process: its scans run here, one at a time.
"""

from __future__ import annotations

import gc
import importlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from sqlalchemy import Engine

from bot import db

logger = logging.getLogger(__name__)

T = TypeVar("T")

WORKERS = 2  # scans at once; a worker holds about 65 MB idle, 105 MB while it exports 100,000 tokens


class ScanFailed(Exception):
    """The worker process running a scan ended before it answered."""


def run(engine: Engine, job: Callable[..., T], **arguments: Any) -> T:
    """`job(session=..., **arguments)` in a worker process, in a transaction of its own, and what
    it returns. `job` is a module-level function and the arguments plain data (they are pickled)."""
    if not shareable(engine):
        with one_at_a_time():
            return _in_session(engine, job, arguments)
    url = engine.url.render_as_string(hide_password=False)
    pool = _pool()
    try:
        return pool.submit(_work, url, job, arguments).result()
    except BrokenProcessPool:
        _discard(pool)
        logger.error("%s: the worker process ended before it answered", _name(job))
        raise ScanFailed(f"{_name(job)}: the worker process ended before it answered") from None


def start(engine: Engine) -> None:
    """Start the workers before the first scan needs one: a spawned worker spends about a second
    of CPU importing tokenbot. Called as the app is built; nothing once the pool exists."""
    global _current
    if not shareable(engine):
        return
    with _POOL_LOCK:
        if _current is not None:
            return
        _current = pool = _new_pool()
    for _ in range(WORKERS):
        pool.submit(_ready)  # a worker is spawned when a job finds none idle


def shareable(engine: Engine) -> bool:
    """Whether another process can open this database (an in-memory SQLite one it cannot)."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return True
    return url.database not in (None, "", ":memory:") and url.query.get("mode") != "memory"


_HERE = threading.Lock()


def one_at_a_time() -> threading.Lock:
    """Held by a scan that runs in this process: two at once take as long as one after the other
    under the one interpreter lock, and together they starve short requests (an owner's click)
    of it, each of whose many small database calls waits its turn behind them."""
    return _HERE


_POOL_LOCK = threading.Lock()
_current: ProcessPoolExecutor | None = None


def _pool() -> ProcessPoolExecutor:
    global _current
    with _POOL_LOCK:
        if _current is None:
            _current = _new_pool()
        return _current


def _new_pool() -> ProcessPoolExecutor:
    spawn = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=WORKERS, mp_context=spawn, initializer=_ready)


def _discard(pool: ProcessPoolExecutor) -> None:
    """Forget a broken pool (unless another job already replaced it)."""
    global _current
    with _POOL_LOCK:
        if _current is pool:
            _current = None
    pool.shutdown(wait=False, cancel_futures=True)


def _ready() -> None:
    """In a new worker: leave with the server however it ends, and import what every scan reads
    through before a scan waits for it."""
    threading.Thread(target=_leave_with_parent, name="scans-parent-watch", daemon=True).start()
    importlib.import_module("bot.services.report")


def _leave_with_parent() -> None:
    """A server that is killed (SIGKILL, out of memory) runs no exit handler to stop its workers,
    and each worker holds the write end of the pool's own queue, so it never reads an end of file
    there either: it watches the server's end of the pipe multiprocessing spawned it through."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os._exit(0)


def _work(url: str, job: Callable[..., T], arguments: dict[str, Any]) -> T:
    """In the worker: the job, on an engine of its own. The cycle collector is off meanwhile: a
    scan makes hundreds of thousands of short-lived objects and no garbage cycles, and each pass
    would only rescan the objects that live through the scan (about a sixth of its CPU)."""
    engine = db.make_engine(url, pool_size=1, overflow=0)
    gc.disable()
    try:
        return _in_session(engine, job, arguments)
    finally:
        gc.enable()
        engine.dispose()


def _in_session(engine: Engine, job: Callable[..., T], arguments: dict[str, Any]) -> T:
    with db.session_scope(engine) as session:
        return job(session=session, **arguments)


def _name(job: Callable[..., Any]) -> str:
    return f"{job.__module__}.{job.__qualname__}"
