"""The PNG chart of a benchmark's figures: ESDM and its peers side by side, the ratios marked.

Every benchmark that writes JSON also draws the figures it prints, in one PNG next to the JSON
(``chart_path``). A chart is a column of panels, one per unit; in each, a group of bars per
measurement and one bar per system. The first system of a panel is the subject (ESDM);
above each other system's bar stands the subject's figure divided by that bar's, the ratio the
benchmark prints.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The Figure is drawn by the Agg canvas savefig picks for ".png": no pyplot state, no display.
from matplotlib.axes import Axes
from matplotlib.figure import Figure

LABEL_WIDTH = 18  # characters per line of a group's label
# characters per inch of the 12-point title and the 10-point panel titles: longer ones wrap
# instead of being cut off at the figure's edge
TITLE_CHARS_PER_INCH, PANEL_CHARS_PER_INCH = 8.5, 10


@dataclass(frozen=True)
class Panel:
    """One axis: ``series`` maps a system's name to its figure for each of ``labels``
    (None where it was not measured); the first system is the subject of the ratios."""

    title: str
    unit: str
    labels: Sequence[str]
    series: Mapping[str, Sequence[float | None]]
    log: bool = False

    def __post_init__(self) -> None:
        if not self.series:
            raise ValueError(f"panel {self.title!r}: no series")
        for name, values in self.series.items():
            if len(values) != len(self.labels):
                raise ValueError(
                    f"panel {self.title!r}: series {name!r} has {len(values)} figures "
                    f"for {len(self.labels)} labels"
                )

    @property
    def subject(self) -> str:
        return next(iter(self.series))


def chart_path(json_path: Path) -> Path:
    """Where a benchmark's chart goes: its JSON's path with the suffix ``.png``."""
    return json_path.with_suffix(".png")


def ratio(subject: float | None, peer: float | None) -> float | None:
    """subject / peer, or None where either is missing or the peer is zero."""
    if subject is None or peer is None or peer == 0:
        return None
    return subject / peer


def write_chart(path: Path, title: str, panels: Sequence[Panel]) -> None:
    """Draw ``panels`` under ``title`` and save them as a PNG at ``path``."""
    if not panels:
        raise ValueError(f"chart {title!r}: no panels")
    groups = max(len(p.labels) * len(p.series) for p in panels)
    width = max(6.4, 0.55 * groups + 2)
    figure = Figure(figsize=(width, 3.6 * len(panels)), layout="constrained")
    figure.suptitle(_wrap(title, int(width * TITLE_CHARS_PER_INCH)), fontsize=12)
    column = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for axes, panel in zip(column, panels, strict=True):
        _draw(axes, panel, int(width * PANEL_CHARS_PER_INCH))
    figure.savefig(path, format="png", dpi=110)


def _draw(axes: Axes, panel: Panel, title_chars: int) -> None:
    width = 0.8 / len(panel.series)
    centres = np.arange(len(panel.labels))
    subject = panel.series[panel.subject]
    for k, (name, values) in enumerate(panel.series.items()):
        xs = centres - 0.4 + width * (k + 0.5)
        measured = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if not measured:
            continue
        bars = axes.bar(*zip(*measured, strict=True), width, label=name, color=f"C{k}")
        if k == 0:
            continue
        marks = [ratio(s, v) for s, v in zip(subject, values, strict=True) if v is not None]
        axes.bar_label(bars, [f"{r:.3g}x" if r is not None else "" for r in marks], fontsize=8)
    axes.set_title(_wrap(panel.title, title_chars), fontsize=10)
    axes.set_ylabel(panel.unit + (" (log scale)" if panel.log else ""))
    axes.set_xticks(centres, [textwrap.fill(label, LABEL_WIDTH) for label in panel.labels])
    axes.tick_params(axis="x", labelsize=8)
    if panel.log:
        axes.set_yscale("log")
    axes.margins(y=0.15)  # room for the ratios above the tallest bars
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    note = f"above a bar: {panel.subject} / that system" if len(panel.series) > 1 else None
    axes.legend(fontsize=8, title=note, title_fontsize=7)


def _wrap(text: str, width: int) -> str:
    """``text`` with each of its lines wrapped at ``width`` characters."""
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())
