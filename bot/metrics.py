"""Prometheus metrics, in one registry per process (served at GET /metrics in HTTP mode).

Counters for syncs, reminders, decisions by action and status, Slack and Databricks errors and
scheduled jobs, and a histogram of the time to acknowledge Slack.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

SYNCS = Counter("tokenbot_syncs", "Workspace syncs", ["workspace", "status"], registry=REGISTRY)
REMINDERS = Counter("tokenbot_reminders_sent", "Reminder notifications delivered", registry=REGISTRY)
DECISIONS = Counter("tokenbot_decisions", "Decisions recorded", ["action", "status"], registry=REGISTRY)
SLACK_ERRORS = Counter("tokenbot_slack_errors", "Slack API errors", ["error"], registry=REGISTRY)
DATABRICKS_ERRORS = Counter(
    "tokenbot_databricks_errors", "Databricks API errors", ["kind"], registry=REGISTRY
)
JOB_RUNS = Counter("tokenbot_job_runs", "Scheduled job runs", ["job", "status"], registry=REGISTRY)
ACK_SECONDS = Histogram(
    "tokenbot_slack_ack_seconds",
    "Time from receiving a Slack request to answering it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
    registry=REGISTRY,
)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
