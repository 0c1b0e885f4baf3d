"""The HTML document around the sections: style, navigation, the table sorter and plotly.js, inlined
so the file opens offline and can be mailed or archived as one file.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from polyp_ray.report import table
from polyp_ray.report.markup import Scripts, esc

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:1600px;
padding:0 24px 48px;color:#1d1d1f;line-height:1.45}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 0;z-index:10}
nav a{margin-right:16px;color:#0b57d0;text-decoration:none}
h1{font-size:1.6em;margin:20px 0 6px}h2{margin-top:36px;border-bottom:2px solid #eee;padding-bottom:4px}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f6f8fa;padding:10px;overflow:auto;max-height:420px;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse;font-size:.86em;margin:8px 0}
th,td{border-bottom:1px solid #e3e3e3;padding:4px 7px;text-align:left;vertical-align:top}
td.num{text-align:right}
.scroll{overflow-x:auto;max-width:100%}td.num,td small{white-space:nowrap}
table.sortable th{cursor:pointer;background:#f4f4f6;user-select:none;white-space:nowrap}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
tbody.families tr{background:#f1f6ff}tbody.families tr.best{background:#dcebff}
tbody.trials tr:first-child td{border-top:2px solid #888}
table.kv th{background:#fafafa;font-weight:600;white-space:nowrap}
.caption,.note{color:#555;font-size:.88em;max-width:1000px}.note{color:#8a4b00}
.headline{font-size:1.1em}.verdict{padding:8px 12px;border-radius:6px;max-width:1000px}
.verdict.yes{background:#e7f6ea}.verdict.no{background:#fff4e0}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:12px}
figure.case{margin:0;border:1px solid #ddd;border-radius:6px;padding:6px;background:#fafafa}
figure.case.best{border-color:#7bc47f;background:#f3fbf3}figure.case img{display:block;width:100%}
figcaption{font-size:.82em;color:#333;word-break:break-all;margin-top:4px}
.hit{color:#00a000;font-weight:600}.fp{color:#e61e1e;font-weight:600}.fn{color:#285aff;font-weight:600}
.plot{margin:10px 0}
.beside{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.beside>.plot{flex:1 1 480px;min-width:420px}
.table-tools{display:flex;gap:16px;align-items:center;margin:8px 0;font-size:.9em}
.table-tools input{width:18em;padding:3px 6px}small.error{color:#b00020}
"""

class Page:
    """Collects sections, figures and scripts; ``render`` writes the document with its
    Content-Security-Policy and a navigation bar of the sections made, in their order (no second list)."""

    def __init__(self) -> None:
        self.scripts = Scripts()
        self._figures = 0
        self.nav: list[tuple[str, str]] = []  # (anchor, link text) of every section, in page order

    def section(self, anchor: str, title: str, body: str, link: str | None = None) -> str:
        """A section of the page, linked from the navigation bar as ``link`` (default: its title)."""
        self.nav.append((anchor, link or title))
        return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'

    def figure(self, fig: go.Figure | None, missing: str = "") -> str:
        if fig is None:
            return f"<p>{esc(missing)}</p>" if missing else ""
        self._figures += 1
        fragment = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{self._figures}",
                               config={"displaylogo": False, "responsive": True})
        return f'<div class="plot">{self.scripts.adopt(fragment)}</div>'

    def render(self, title: str, body: str) -> str:
        plotly_js = self.scripts.inline(get_plotlyjs())
        sorter = self.scripts.inline(table.SCRIPT)
        nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in self.nav)
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f'<meta http-equiv="Content-Security-Policy" content="{esc(self.scripts.policy())}">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{esc(title)}</title><style>{STYLE}</style>{plotly_js}</head>"
                f"<body><nav>{nav}</nav>{body}{sorter}</body></html>\n")
