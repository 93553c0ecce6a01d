"""The digest's chart: deadlines per day over the next 30 days, stacked by kind, as PNG bytes.

matplotlib's object API on the Agg canvas: no pyplot, no global figure state, no display, so
drawing is safe from any thread (the scheduler's, a slash command's).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.domain.deadlines import DEADLINE_LABELS, DeadlineKind

COLOURS = {
    DeadlineKind.AUTOSCOPE_ENFORCEMENT: "#4c78a8",
    DeadlineKind.EXPIRY: "#f58518",
    DeadlineKind.INACTIVITY_REVOCATION: "#e45756",
    DeadlineKind.ORG_POLICY: "#72b7b2",
}
ORDER = tuple(COLOURS)

ChartDays = Sequence[tuple[date, Sequence[tuple[DeadlineKind, int]]]]


def deadline_chart(days: ChartDays, title: str = "Deadlines per day, next 30 days") -> bytes:
    """A stacked bar per day (one colour per deadline kind); PNG bytes."""
    figure = Figure(figsize=(10, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(days)))
    counts = [dict(kinds) for _, kinds in days]
    bottom = [0] * len(days)
    for kind in ORDER:
        heights = [day_counts.get(kind, 0) for day_counts in counts]
        if any(heights):
            axes.bar(positions, heights, bottom=bottom, color=COLOURS[kind], label=DEADLINE_LABELS[kind])
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.set_xticks(positions, [f"{day:%a} {day.day}" for day, _ in days], rotation=90, fontsize=7)
    axes.set_xlim(-0.6, len(days) - 0.4)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("deadlines")
    if days:
        first, last = days[0][0], days[-1][0]
        title = f"{title} ({first.day} {first:%b} to {last.day} {last:%b})"
    axes.set_title(title)
    axes.spines[["top", "right"]].set_visible(False)
    if any(bottom):
        figure.legend(loc="lower center", ncol=len(ORDER), frameon=False, fontsize=8)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
