"""Posting what the scheduled jobs have to say: the channel digest (with its chart) and the
enforcement job's notices. The services decide; these render with the pure builders and send."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from bot import clock, metrics
from bot.config import Settings
from bot.services import digest
from bot.services.digest import Digest
from bot.services.enforcement import Enforced, EnforcementReport, HeldReport
from bot.services.ports import Delivery, DeliveryError
from bot.slack.blocks import digest as digest_blocks
from bot.slack.blocks import enforcement as enforcement_blocks
from bot.slack.blocks.commands import DigestNow
from bot.slack.messenger import SlackMessenger

logger = logging.getLogger(__name__)

CHART_FILENAME = "tokenbot-deadlines.png"
CHART_TITLE = "Deadlines per day, next 30 days"


class SlackDigestPoster:
    def __init__(self, client: WebClient) -> None:
        self._client = client
        self._messenger = SlackMessenger(client)

    def post(self, channel: str, digest: Digest, *, chart: bool) -> Delivery:
        """The digest message, then its chart as a file in the same channel (a failed upload is
        logged: the message itself went out)."""
        text, built = digest_blocks.digest_message(digest)
        delivery = self._messenger.post(channel, text, [block.to_dict() for block in built])
        if chart and digest.has_chart_data:
            self._upload_chart(delivery.channel, digest)
        return delivery

    def preview(self, digest: Digest) -> str:
        _, built = digest_blocks.digest_message(digest)
        return digest_blocks.as_text(built)

    def _upload_chart(self, channel: str, digest: Digest) -> None:
        from bot.slack.blocks.chart import deadline_chart  # matplotlib: loaded when a chart is drawn

        try:
            png = deadline_chart(digest.chart, CHART_TITLE)
            self._client.files_upload_v2(
                channel=channel,
                content=png,
                filename=CHART_FILENAME,
                title=CHART_TITLE,
                alt_txt=f"{CHART_TITLE}, stacked by kind: {digest.upcoming_count} in the next 14 days",
            )
        except SlackApiError as error:
            code = error.response.get("error") or "unknown"
            metrics.SLACK_ERRORS.labels(code).inc()
            logger.error("digest chart upload to %s failed: %s", channel, code)
        except Exception:  # the chart is a nicety; the digest went out
            logger.exception("digest chart for %s failed", channel)


class SlackEnforcementNotifier:
    def __init__(self, client: WebClient) -> None:
        self._messenger = SlackMessenger(client)

    def owner_revoked(self, owner_slack_id: str, items: Sequence[Enforced]) -> Delivery:
        text, built = enforcement_blocks.owner_revoked(items)
        return self._messenger.post(owner_slack_id, text, [block.to_dict() for block in built])

    def admins_report(self, channel: str, report: EnforcementReport) -> Delivery:
        text, built = enforcement_blocks.admins_report(report)
        return self._messenger.post(channel, text, [block.to_dict() for block in built])

    def admins_held(self, channel: str, report: HeldReport) -> Delivery:
        text, built = enforcement_blocks.admins_held(report)
        return self._messenger.post(channel, text, [block.to_dict() for block in built])


def digest_now(
    settings: Settings, engine: Engine, client: WebClient, now: Callable[[], datetime] = clock.now
) -> Callable[[], DigestNow]:
    """`Deps.post_digest`: post the digest now (`/tokens digest`); what happened, as facts."""
    poster = SlackDigestPoster(client)

    def post_digest() -> DigestNow:
        channel = settings.slack.digest_channel
        if not channel:
            return DigestNow(channel=None)
        try:
            posted = digest.run(
                engine=engine,
                policy=settings.policy,
                poster=poster,
                channel=channel,
                now=now(),
                tz=settings.slack.digest_timezone,
                chart=settings.slack.digest_chart,
            )
        except DeliveryError as error:
            logger.error("digest to %s failed: %s", channel, error.message)
            return DigestNow(channel=channel, error=error.message)
        return DigestNow(channel=channel, summary=posted.summary())

    return post_digest
