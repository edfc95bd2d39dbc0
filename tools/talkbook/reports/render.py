"""A report's values as Markdown, HTML (through the locale's report templates) or CSV.

Contract: `render(ws, name, fmt, data, page)` returns bytes: Markdown and HTML from
`<locale>/reports/<name>.<fmt>.j2` (the workspace's own templates first, the package's copies
for older workspaces), rendered in talkbook.templating's immutable sandbox; CSV straight from
`data["table"]` with the csv module, codes as they are, UTF-8 with a byte-order mark
(`utf-8-sig`: what Excel in a Chinese office opens as UTF-8, not as GBK), text that starts like
a formula kept as text. HTML is one self-contained file: inline CSS, charts as inline SVG
(charts.py), no script, no URL; in Markdown, a `<` from the data is written `&lt;` and a `![`
as `!\\[`, so no tag and no image from a record reaches a Markdown viewer.

`Redactor` swaps every name the workspace knows (cadres' profiles, people in talkbook.toml) for
its id, in the values before rendering and once more in the rendered text, so neither a table,
a chart label, a free-text field nor a template can carry a name through; names listed only in a
record's `present` are withheld whole.

Security invariant: templates see plain values and one chart function, never the App, the
catalog or a document; a template error is one TemplateError line naming the template, not data.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

from markupsafe import Markup

from talkbook.i18n import _
from talkbook.reports import charts
from talkbook.workspace import Workspace

BOM_ENCODING = "utf-8-sig"


class Redactor:
    """Names → ids, longest name first, in one pass (an id put in is never matched again);
    letter case ignored, so `zhang wei` goes as surely as `Zhang Wei`."""

    def __init__(
        self, names: Iterable[tuple[str, str]], cadres: Iterable[str] | None = None
    ) -> None:
        # the cadres whose name is known (a readable profile); None: every one counts as known
        self.cadres = None if cadres is None else set(cadres)
        pairs = [(name.strip(), ident) for name, ident in names if name and name.strip()]
        self.ids = {name.casefold(): ident for name, ident in pairs if name != ident}
        ordered = sorted((n for n, ident in pairs if n != ident), key=len, reverse=True)
        alternatives = "|".join(map(re.escape, ordered))
        self.pattern = re.compile(alternatives, re.IGNORECASE) if ordered else None
        self.known = {ident for _name, ident in pairs}

    def text(self, value: str) -> str:
        if self.pattern is None:
            return value
        return self.pattern.sub(lambda m: self.ids.get(m.group(0).casefold(), "***"), value)

    def values(self, value: Any) -> Any:
        if isinstance(value, Markup):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.values(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.values(v) for v in value]
        return value

    def blind(self, data: dict[str, Any]) -> dict[str, Any]:
        """Free text about a cadre whose profile this identity cannot read (a speaker's
        follow-ups: "协调张伟爱人就医") is withheld whole: no name in it is known to redact."""
        if self.cadres is None:
            return data
        withheld = _("(withheld)")
        table = data.get("table")
        if isinstance(table, dict):
            rows = [
                {**row, **{k: withheld for k in ("what", "detail") if row.get(k)}}
                if self._unknown(row.get("cadre"))
                else row
                for row in table.get("rows", [])
            ]
            data = {**data, "table": {**table, "rows": rows}}
        cadre = data.get("cadre")
        if isinstance(cadre, dict) and "blocks" in data and self._unknown(cadre.get("id")):
            data = {
                **data,
                "place": withheld if data.get("place") else "",
                "topics": [withheld] if data.get("topics") else [],
                "blocks": [{"kind": "para", "text": withheld}] if data.get("blocks") else [],
                "body_md": withheld if data.get("body_md") else "",
                "deferred": [withheld] if data.get("deferred") else [],
                "follow_ups": [{**f, "what": withheld} for f in data.get("follow_ups", [])],
                "addenda": [{**a, "text": withheld} for a in data.get("addenda", [])],
            }
        return data

    def _unknown(self, cadre: Any) -> bool:
        return bool(cadre) and self.cadres is not None and str(cadre) not in self.cadres

    def form(self, data: dict[str, Any]) -> dict[str, Any]:
        """Who else was present may be named nowhere else: a name the workspace does not know
        is withheld whole (an id stays)."""
        present = [
            p if p in self.known else self.text(p) if p.casefold() in self.ids else _("(withheld)")
            for p in data["present"]
        ]
        return {**data, "present": present}


def bar_chart(chart: Any, title: Any, series: Any = ()) -> Markup:
    """For templates: `{{ bar_chart(report.chart, "title", ["series", …]) }}`."""
    if not isinstance(chart, dict):
        return Markup("")
    items = [(str(label), [float(v) for v in values]) for label, values in chart.get("items", [])]
    names = [str(s) for s in series] if isinstance(series, list | tuple) else []
    return charts.bars(str(title), items, names, percent=bool(chart.get("percent")))


def _no_tags(value: Any) -> Any:
    """Every `<` in the values as `&lt;`, which Markdown shows as `<` but never as a tag, and
    every `![` as `!\\[`: shown as written, never an image a viewer would fetch."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return value.replace("<", "&lt;").replace("![", "!\\[")
    if isinstance(value, dict):
        return {k: _no_tags(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_tags(v) for v in value]
    return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """A cell as Excel should see it: free text that starts like a formula (`=HYPERLINK(…)`)
    is kept as text by a leading apostrophe; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(table: dict[str, Any]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    columns = list(table.get("columns", []))
    writer.writerow(columns)
    for row in table.get("rows", []):
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue().encode(BOM_ENCODING)


def render(
    ws: Workspace,
    name: str,
    fmt: str,
    data: dict[str, Any],
    page: dict[str, Any],
    redactor: Redactor | None = None,
    compiled: Any = None,
) -> bytes:
    """The report `name` in `fmt`; `page` holds what every report shows (organization, dates);
    `compiled` keeps the compiled templates between commands (template_cache.Compiled)."""
    if redactor is not None:
        data, page = redactor.blind(redactor.values(data)), redactor.values(page)
    if fmt == "csv":
        return to_csv(data["table"])
    if fmt == "md":
        # Markdown viewers render raw HTML: a tag in the data (`<img src=…>`) would load a URL.
        data, page = _no_tags(data), _no_tags(page)
    from talkbook.templating import render as render_template  # Jinja: not for CSV

    context = {**page, "report": data, "bar_chart": bar_chart}
    template = f"reports/{name}.{fmt}.j2"
    text = render_template(template, ws.locale, context, ws.templates_dir, compiled)
    if redactor is not None:
        text = redactor.text(text)
    return text.encode("utf-8")
