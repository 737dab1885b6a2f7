"""The HTML shell of the run report: inline CSS and small markup helpers (no JavaScript, no external assets)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

CSS = """
:root {
  --fg: #1d232b; --muted: #5d6671; --faint: #8a929c; --line: #e3e6ea; --bg-soft: #f6f7f9;
  --accent: #3b6fb6; --warn: #c0392b;
}
* { box-sizing: border-box; }
html { background: #fff; }
body {
  margin: 0 auto; max-width: 1000px; padding: 32px 24px 64px; color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans",
        "Liberation Sans", sans-serif;
  -webkit-font-smoothing: antialiased;
}
h1 { font-size: 28px; line-height: 1.2; margin: 2px 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 0 0 4px; letter-spacing: -0.005em; }
h3 { font-size: 14px; margin: 0 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.06em; }
.eyebrow { font-size: 12px; color: var(--faint); text-transform: uppercase; letter-spacing: 0.12em; }
.meta { color: var(--muted); font-size: 13px; }
.meta code, td code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
nav { margin: 14px 0 0; font-size: 13px; color: var(--muted); }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
section { border-top: 1px solid var(--line); padding: 26px 0 6px; margin-top: 26px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 22px 0 18px; }
.card { background: var(--bg-soft); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .k { font-size: 12px; color: var(--muted); }
.card .v { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; line-height: 1.25; }
.card .u { font-size: 11.5px; color: var(--faint); }
.facts { display: grid; grid-template-columns: repeat(3, 1fr); gap: 18px; }
@media (max-width: 760px) { .facts { grid-template-columns: 1fr; } }
table.kv { border-collapse: collapse; width: 100%; font-size: 13.5px; }
table.kv td { padding: 4px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
table.kv td:first-child { color: var(--muted); padding-right: 10px; white-space: nowrap; }
table.kv td:last-child { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 14px 0 6px; }
figure img.plot { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 8px; max-width: 860px; }
figcaption b { color: var(--fg); font-weight: 600; }
.lead { color: var(--muted); font-size: 14px; margin: 0 0 4px; max-width: 860px; }
img.px { image-rendering: pixelated; image-rendering: crisp-edges; display: block; max-width: 100%; height: auto;
         border-radius: 3px; }
.pair { display: flex; flex-wrap: wrap; gap: 0 18px; align-items: flex-start; }
.pair figure { margin-top: 10px; }
.rows { display: grid; grid-template-columns: auto auto; column-gap: 12px; row-gap: 0; align-items: center;
        justify-content: start; margin-top: 10px; }
.rows .label { font-size: 12.5px; color: var(--muted); text-align: right; white-space: nowrap; line-height: 1.2; }
.rows .label b { color: var(--fg); font-weight: 600; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas,
                 monospace; }
.rows .gap { height: 10px; grid-column: 1 / span 2; }
.rows .head { display: flex; font-size: 11.5px; color: var(--faint); font-variant-numeric: tabular-nums; }
.rows .head span { flex: 1; text-align: center; }
.rows img.dim { opacity: 0.55; }
.badge { display: inline-block; font-size: 10.5px; padding: 0 6px; border-radius: 9px; margin-left: 4px;
         background: #fbe9e7; color: var(--warn); font-weight: 600; letter-spacing: 0.02em; }
.values-wrap { overflow-x: auto; margin-top: 12px; }
table.values { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
table.values th, table.values td { padding: 4px 10px; text-align: right; white-space: nowrap; }
table.values thead th { border-bottom: 1.5px solid #c9ced5; font-weight: 600; }
table.values th:first-child, table.values td:first-child { text-align: left; color: var(--muted); font-weight: 400; }
table.values tr.orig td { border-top: 1px solid var(--line); }
table.values tr.recon td { color: var(--accent); }
table.values tr.err td { color: var(--faint); font-size: 12px; }
.note { color: var(--faint); font-size: 12.5px; }
footer { margin-top: 40px; color: var(--faint); font-size: 12px; border-top: 1px solid var(--line); padding-top: 12px; }
"""


@dataclass
class Section:
    """One titled part of the report; ``anchor`` is its id for the contents line."""

    anchor: str
    title: str
    body: str
    lead: str = ""

    def html(self) -> str:
        lead = f'<p class="lead">{self.lead}</p>' if self.lead else ""
        return f'<section id="{escape(self.anchor)}">\n<h2>{escape(self.title)}</h2>\n{lead}\n{self.body}\n</section>'


def kv_table(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """A two-column key/value table; values are HTML (escape them before)."""
    body = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<div><h3>{escape(title)}</h3><table class="kv">{body}</table></div>'


def card(label: str, value: str, unit: str = "") -> str:
    return (f'<div class="card"><div class="k">{escape(label)}</div><div class="v">{escape(value)}</div>'
            f'<div class="u">{escape(unit)}</div></div>')


def plot_html(uri: str, width: int, alt: str, caption: str) -> str:
    """A matplotlib figure shown at ``width`` CSS pixels (shrunk on narrow screens) with its caption."""
    return (f'<figure><img class="plot" src="{uri}" width="{width}" alt="{escape(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def pixel_image(uri: str, width: int, alt: str, cls: str = "px") -> str:
    """An image grid shown at ``width`` CSS pixels with crisp (nearest-neighbour) scaling."""
    return f'<img class="{cls}" src="{uri}" width="{width}" alt="{escape(alt)}">'


def page(title: str, masthead: str, overview: str, sections: Sequence[Section], extra: Sequence[tuple[str, str]],
         footer: str) -> str:
    """The whole document: masthead, contents line, overview (cards, settings), then the sections.

    ``extra``: (name, trusted HTML fragment) pairs, each appended as its own section."""
    extra_sections = [Section(f"extra-{i}", name, fragment) for i, (name, fragment) in enumerate(extra, 1)]
    everything = [*sections, *extra_sections]
    nav = "".join(f'<a href="#{escape(s.anchor)}">{escape(s.title)}</a>' for s in everything)
    body = "\n".join(s.html() for s in everything)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
{masthead}
<nav>{nav}</nav>
{overview}
</header>
{body}
<footer>{footer}</footer>
</body>
</html>
"""
