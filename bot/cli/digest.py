"""`tokenbot digest`: post the channel digest now, or print it (`--dry-run`)."""

from __future__ import annotations

import typer
from rich.markup import escape

from bot import clock, db
from bot.cli.shared import EXIT_PARTIAL, err, load_or_exit, open_database, out, usage_error


def digest_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the digest; post and record nothing."),
) -> None:
    """Post the channel digest now (to slack.digest_channel): deadlines of the next 14 days,
    unanswered escalations, decisions and new risky tokens since the last digest, failing syncs."""
    from bot.services import digest
    from bot.slack.blocks import digest as digest_blocks

    settings = load_or_exit()
    engine = open_database(settings)
    if dry_run:
        with db.session_scope(engine) as session:
            built = digest.build(
                session=session, policy=settings.policy, now=clock.now(), tz=settings.slack.digest_timezone
            )
        _, blocks = digest_blocks.digest_message(built)
        out.print(escape(digest_blocks.as_text(blocks)), highlight=False, soft_wrap=True)
        out.print("Dry run: nothing was posted or recorded.")
        return
    if settings.slack_bot_token is None:
        raise usage_error("SLACK_BOT_TOKEN is not set: tokenbot needs the app's bot token to post the digest")
    if not settings.slack.digest_channel:
        raise usage_error("slack.digest_channel is not set: add the channel's id to [slack] in the TOML file")
    from bot.services.ports import DeliveryError
    from bot.wiring import wire

    try:
        posted = digest.run(
            engine=engine,
            policy=settings.policy,
            poster=wire(settings, engine).digest_poster,
            channel=settings.slack.digest_channel,
            now=clock.now(),
            tz=settings.slack.digest_timezone,
            chart=settings.slack.digest_chart,
        )
    except DeliveryError as error:
        err.print(f"[red]error:[/red] {escape(error.message)}", highlight=False)
        raise typer.Exit(EXIT_PARTIAL) from None
    out.print(f"Digest posted to {settings.slack.digest_channel}: {posted.summary()}", highlight=False)
