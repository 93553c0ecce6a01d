"""`tokenbot serve`: the options and what they require; `bot/serve.py` runs the bot."""

from __future__ import annotations

import typer

from bot.cli.shared import load_or_exit, open_database, usage_error


def serve(
    http: bool = typer.Option(False, "--http", help="Take Slack's requests over HTTP, not Socket Mode."),
    port: int = typer.Option(
        3000, "--port", min=1, max=65535, help="The port to listen on (Socket Mode: health and metrics only)."
    ),
    host: str = typer.Option("0.0.0.0", "--host", help="The address to listen on."),  # noqa: S104
    no_scheduler: bool = typer.Option(
        False, "--no-scheduler", help="Answer Slack only: no scheduled sync, reminders, digest, enforcement."
    ),
    job_interval: list[str] = typer.Option(
        None, "--job-interval", hidden=True, help="JOB=SECONDS: run a job on this interval (tests, trials)."
    ),
) -> None:
    """Run the bot: Socket Mode by default (SLACK_APP_TOKEN), or HTTP mode with --http (/slack/events,
    /healthz, /readyz, /metrics); the scheduler runs in both. SIGTERM stops it cleanly (exit 0)."""
    from datetime import timedelta

    from bot.serve import ServeError
    from bot.serve import serve as run_server

    settings = load_or_exit()
    engine = open_database(settings)
    if settings.slack_bot_token is None:
        raise usage_error("SLACK_BOT_TOKEN is not set: tokenbot needs the app's bot token (xoxb-...)")
    if http and settings.slack_signing_secret is None:
        raise usage_error("SLACK_SIGNING_SECRET is not set: HTTP mode cannot verify that Slack sent requests")
    if not http and settings.slack_app_token is None:
        raise usage_error(
            "SLACK_APP_TOKEN is not set: Socket Mode needs the app-level token (xapp-...); "
            "or serve over HTTP with `tokenbot serve --http`"
        )
    intervals = {}
    for item in job_interval or ():
        job, _, seconds = item.partition("=")
        if not job or not seconds.isdigit() or int(seconds) < 1:
            raise usage_error(f"--job-interval {item!r}: write JOB=SECONDS, such as reminders=60")
        intervals[job] = timedelta(seconds=int(seconds))
    try:
        run_server(
            settings,
            engine,
            http=http,
            host=host,
            port=port,
            scheduler=not no_scheduler,
            intervals=intervals,
        )
    except ServeError as error:
        raise usage_error(str(error)) from None
