"""What every chart of `harden trend` shares: tick steps and the spelling of numbers and dates.

Fixed spellings keep the SVG byte-identical across runs and platforms, so a test can pin it.
"""

from __future__ import annotations

from datetime import datetime


def nice_step(maximum: int, max_ticks: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that needs at most ``max_ticks`` intervals."""
    if maximum <= 0:
        return 1
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if -(-maximum // step) <= max_ticks:
                return step
        magnitude *= 10


def num(value: float) -> str:
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")
