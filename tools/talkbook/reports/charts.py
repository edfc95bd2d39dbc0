"""Bar charts as inline SVG, for the HTML reports: no script, no external resource.

Contract: `bars(title, items, series)` returns an `<svg>` element as Markup: one horizontal
group per item (its label on the left), one bar per series, the value at the bar's end, and a
legend when there are two series or more. Values are numbers; `percent=True` draws them against
100 and writes them as percentages.

Security invariant: every text that reaches the SVG (titles, labels: unit names, speakers'
names) is escaped here, so data can never close the element or add markup to the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 720
LABEL_WIDTH = 190
VALUE_WIDTH = 60
BAR_HEIGHT = 16
GAP = 10
TOP = 34
COLOURS = ("#3b6ea5", "#d08c2e", "#5a9a5a")
FONT = (
    "'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',"
    "'WenQuanYi Micro Hei',sans-serif"
)
MAX_LABEL = 14  # characters: a longer label is cut with an ellipsis (the table has it whole)


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _legend(series: Sequence[str]) -> list[str]:
    parts = []
    x = LABEL_WIDTH
    for index, name in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        parts.append(f'<rect x="{x}" y="24" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="33" font-size="12">{escape(name)}</text>')
        x += 30 + 14 * len(name)
    return parts


def bars(
    title: str,
    items: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str] = (),
    percent: bool = False,
) -> Markup:
    count = max(1, len(series) or max((len(v) for _, v in items), default=1))
    top = TOP + (14 if len(series) > 1 else 0)
    group = count * BAR_HEIGHT + GAP
    height = top + max(1, len(items)) * group + 6
    peak = 100.0 if percent else max([1.0, *(float(x) for _, v in items for x in v)])
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'font-family="{FONT}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
        *(_legend(series) if len(series) > 1 else []),
        f'<line x1="{LABEL_WIDTH}" y1="{top - 4}" x2="{LABEL_WIDTH}" y2="{height - 4}" '
        'stroke="#999" stroke-width="1"/>',
    ]
    for row, (label, values) in enumerate(items):
        y = top + row * group
        middle = y + count * BAR_HEIGHT / 2 + 4
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{middle:.0f}" font-size="12" '
            f'text-anchor="end">{escape(_short(label))}</text>'
        )
        for index, value in enumerate(values):
            length = span * float(value) / peak
            top_y = y + index * BAR_HEIGHT
            shown = f"{value:.0f}%" if percent else f"{value:g}"
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{top_y}" width="{length:.1f}" '
                f'height="{BAR_HEIGHT - 3}" fill="{COLOURS[index % len(COLOURS)]}"/>'
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{top_y + BAR_HEIGHT - 5}" '
                f'font-size="11">{escape(shown)}</text>'
            )
    parts.append("</svg>")
    return Markup("\n".join(parts))
