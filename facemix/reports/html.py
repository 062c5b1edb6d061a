"""``report.html``: one self-contained page per run, comparison and cross-validation (figures inline as data URIs,
so the file can be mailed or opened from a cluster's shared disk), rendered with a Jinja2 template
(``templates/report.html.j2``; Jinja2 comes with torch). The sections are the report files facemix already wrote:
their Markdown tables and text become HTML, their PNGs inline pictures."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_TEMPLATE = "report.html.j2"


@dataclass
class Figure:
    src: str  # a data: URI
    caption: str


@dataclass
class Section:
    heading: str
    html: str = ""
    figures: list[Figure] = field(default_factory=list)


def inline_png(path: str | Path, caption: str) -> Figure | None:
    """A PNG as an inline picture; None when the file is not there (a run without curves, a report without CAM)."""
    path = Path(path)
    if not path.is_file():
        return None
    return Figure("data:image/png;base64," + base64.b64encode(path.read_bytes()).decode(), caption)


def figures(*items: tuple[str | Path, str]) -> list[Figure]:
    return [f for f in (inline_png(p, c) for p, c in items) if f is not None]


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _table(rows: list[str]) -> str:
    head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]

    def cell(tag: str, value: str) -> str:
        numeric = re.fullmatch(r"[-+]?[\d.,]+( \*)?|\[.*\]|[\d.]+ ± [\d.]+", value) is not None
        return f"<{tag}{' class=num' if numeric and tag == 'td' else ''}>{_inline(value)}</{tag}>"

    lines = ["<table><tr>" + "".join(cell("th", h) for h in head) + "</tr>"]
    lines += ["<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in body]
    return "\n".join(lines) + "</table>"


def markdown_to_html(text: str) -> str:
    """The Markdown facemix writes (headings, pipe tables, bullet lists, paragraphs), as HTML."""
    out, table, items = [], [], []

    def close() -> None:
        if table:
            out.append(_table(table))
            table.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        close()
        if line.startswith("#"):
            level = min(6, len(line) - len(line.lstrip("#")) + 1)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    close()
    return "\n".join(out)


def preformatted(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def render_page(title: str, subtitle: str, sections: Sequence[Section], kpis: Sequence[tuple[str, str]] = ()) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("facemix.reports", "templates"), autoescape=select_autoescape(["j2"]))
    kpi_list = [{"value": value, "label": label} for value, label in kpis]
    return env.get_template(_TEMPLATE).render(title=title, subtitle=subtitle, sections=sections, kpis=kpi_list)
