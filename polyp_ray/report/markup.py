"""HTML building blocks. Every piece of text from a file or a user goes through ``esc`` exactly once,
here or in figures.py; sections never write raw strings into markup.

Defence in depth: the page's Content-Security-Policy allows only the scripts registered with ``Scripts``
(by SHA-256), so markup that slipped past escaping still could not run, and no resource outside the
file is ever fetched (the page must open offline).
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

_SCRIPT = re.compile(r"<script[^>]*>(.*?)</script>", re.S)


def esc(value: Any) -> str:
    """Text for an HTML text node or a quoted attribute."""
    return html.escape(str(value), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def fmt_int(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{int(value):,}"


def sort_key(value: float | str) -> str:
    """The data-sort attribute: numbers sort numerically in the page's sorter, missing ones last."""
    if isinstance(value, float):
        # Ten significant digits sort as well as seventeen and keep a 2,000-row table a third smaller.
        return "" if math.isnan(value) else f"{value:.10g}"
    return esc(value)


def cell(text: str, sort: float | str | None = None, cls: str = "") -> str:
    """A <td> whose ``text`` is already markup; ``sort`` is the raw value the column sorts by."""
    attrs = f' data-sort="{sort_key(sort)}"' if sort is not None else ""
    attrs += f' class="{cls}"' if cls else ""
    return f"<td{attrs}>{text}</td>"


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def key_values(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv">{rows}</table>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


@dataclass
class Scripts:
    """The page's inline scripts and their CSP hashes."""

    hashes: list[str] = field(default_factory=list)

    def inline(self, body: str) -> str:
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        self.hashes.append(f"'sha256-{digest}'")
        return f"<script>{body}</script>"

    def adopt(self, fragment: str) -> str:
        """Re-emit a plotly ``to_html`` fragment with its scripts registered.

        Plotly writes the figure JSON with ``<``, ``>`` and ``/`` as ``\\u`` escapes, so no string in it can
        close the <script> element (tests/report/test_render.py checks this with a "</script>" trial id).
        """
        return _SCRIPT.sub(lambda m: self.inline(m.group(1)), fragment)

    def policy(self) -> str:
        # Plotly sets inline styles and uses data:/blob: images for its "download as PNG" button.
        return ("default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; font-src data:; "
                f"script-src {' '.join(self.hashes)}; base-uri 'none'; form-action 'none'")
