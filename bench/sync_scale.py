"""Sync at scale: 20 sandbox workspaces x 5,000 tokens (100,000 tokens, 20,000 owners).

Measures, in one run:
  (a) the bare databricks-sdk: list every workspace's tokens and resolve each owner through SCIM
      (the floor: the same HTTP work tokenbot must do, with nothing stored);
  (b) `tokenbot sync` into an empty database;
  (c) a second `tokenbot sync` with nothing changed;
  (d) `tokenbot report --format json`.
Each of (a)-(d) runs as its own process, so its peak memory is its own.
Goals: (b) <= 1.5x (a), (c) <= 1.2x (a), (d) under 5 s, peak memory under 400 MB.

    .venv/bin/python bench/sync_scale.py [--workspaces 20] [--tokens 5000] [--owners 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.sandbox.databricks import DatabricksSandbox  # noqa: E402

BASELINE = r"""
import json, sys
from concurrent.futures import ThreadPoolExecutor
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound

def one(workspace):
    client = WorkspaceClient(host=workspace["url"], token=workspace["token"], auth_type="pat")
    tokens = list(client.token_management.list())
    for owner in sorted({t.owner_id for t in tokens}):
        try:
            client.users.get(str(owner))
        except NotFound:
            client.service_principals.get(str(owner))
    return len(tokens)

workspaces = json.loads(sys.argv[1])
with ThreadPoolExecutor(max_workers=int(sys.argv[2])) as pool:
    print(sum(pool.map(one, workspaces)))
"""


def seed(sandbox: DatabricksSandbox, tokens: int, owners: int, rng: random.Random) -> None:
    now = datetime.now(UTC)
    ids = [sandbox.add_user(user_name=f"user{i}-{sandbox.workspace_id}@example.com") for i in range(owners - 10)]
    ids += [sandbox.add_service_principal(application_id=f"app-{i}-{sandbox.workspace_id}") for i in range(10)]
    states = ["AUTOSCOPE_STATE_RUNNING", "AUTOSCOPE_STATE_COMPLETED", None, "AUTOSCOPE_STATE_USER_SELECTED"]
    for i in range(tokens):
        created = now - timedelta(days=rng.randint(1, 700))
        sandbox.add_token(
            owner_id=ids[i % len(ids)],
            comment=rng.choice(["etl", "nightly job", "tmp", "dashboards", "", "ci pipeline"]),
            created_at=created,
            expires_at=None if rng.random() < 0.3 else created + timedelta(days=rng.randint(30, 730)),
            last_used_at=None if rng.random() < 0.1 else now - timedelta(days=rng.randint(0, 120)),
            scopes=rng.choice([["all-apis"], ["sql"], ["sql", "jobs"], ["authentication"]]),
            inferred_scopes=["sql"],
            autoscope_state=rng.choice(states),
        )


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed, result.stdout


def peak_child_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=5000, help="tokens per workspace")
    parser.add_argument("--owners", type=int, default=1000, help="owners per workspace")
    parser.add_argument("--parallel", type=int, default=4, help="workspaces fetched at once (both sides)")
    args = parser.parse_args()

    rng = random.Random(7)
    python = sys.executable
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        sandboxes = [stack.enter_context(DatabricksSandbox(workspace_id=5000 + i)) for i in range(args.workspaces)]
        print(f"seeding {args.workspaces} workspaces x {args.tokens} tokens, {args.owners} owners each ...")
        for sandbox in sandboxes:
            seed(sandbox, args.tokens, args.owners, rng)
        config = Path(tmp) / "tokenbot.toml"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENBOT_", "DATABRICKS_", "SLACK_"))}
        lines = []
        for i, sandbox in enumerate(sandboxes):
            env[f"WS{i}_TOKEN"] = sandbox.admin_token
            lines.append(f'[[workspaces]]\nname = "ws{i}"\nhost = "{sandbox.url}"\ntoken_env = "WS{i}_TOKEN"\n')
        lines.append(f"[databricks]\nmax_parallel_workspaces = {args.parallel}\n")
        config.write_text("\n".join(lines))
        env.update(TOKENBOT_CONFIG=str(config), TOKENBOT_DATABASE_URL=f"sqlite:///{tmp}/bench.db",
                   TOKENBOT_LOG_LEVEL="WARNING")
        tokenbot = [python, "-m", "bot"]
        timed([*tokenbot, "db", "upgrade"], env)

        spec = json.dumps([{"url": s.url, "token": s.admin_token} for s in sandboxes])
        a, listed = timed([python, "-c", BASELINE, spec, str(args.parallel)], env)
        mem_a = peak_child_mb()
        b, _ = timed([*tokenbot, "sync"], env)
        mem_b = peak_child_mb()
        c, second = timed([*tokenbot, "sync"], env)
        d, report = timed([*tokenbot, "report", "--format", "json"], env)
        mem_all = peak_child_mb()

    total = args.workspaces * args.tokens
    assert int(listed) == total, f"baseline listed {listed}, expected {total}"
    assert len(json.loads(report)) == total, "report is missing tokens"
    assert " 0 new, 0 gone, 0 changed" in second, second
    print(f"tokens: {total:,}  owners: {args.workspaces * args.owners:,}  parallel workspaces: {args.parallel}")
    print(f"(a) bare SDK list + SCIM      {a:7.2f} s   peak {mem_a:6.0f} MB")
    print(f"(b) tokenbot sync, empty db   {b:7.2f} s   {b / a:4.2f}x (a)   goal <= 1.5x")
    print(f"(c) tokenbot sync, unchanged  {c:7.2f} s   {c / a:4.2f}x (a)   goal <= 1.2x")
    print(f"(d) tokenbot report json      {d:7.2f} s   goal < 5 s")
    print(f"peak memory of any tokenbot process (max RSS): {mem_all:.0f} MB (baseline {mem_a:.0f} MB)  goal < 400 MB"
          + ("" if mem_all > mem_b else f"; sync {mem_b:.0f} MB"))
    ok = b <= 1.5 * a and c <= 1.2 * a and d < 5 and mem_all < 400
    print(f"summary: sync {b / a:.2f}x, resync {c / a:.2f}x of the bare SDK, report {d:.1f} s, "
          f"peak {mem_all:.0f} MB: {'all goals met' if ok else 'GOALS MISSED'}")


if __name__ == "__main__":
    main()
