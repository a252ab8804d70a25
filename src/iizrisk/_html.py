"""One look for every HTML page iizrisk writes: the run summary, the model card, the monitoring report, the
data-protection impact assessment and a person's information document.

Each page is self-contained (no file, font or script from elsewhere: it is opened from a run folder, sent
by mail, or printed) and uses the same sans-serif type, the same tables (rows ruled, numbers right-aligned
where a page asks for it) and the same boxes for a notice (yellow), a warning (red) and a passed check
(green).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["STYLE", "page", "table"]

#: The style sheet of every page. ``.n`` right-aligns a cell of numbers and keeps it on one line (counts,
#: shares, dates);
#: ``.open`` marks a field still to fill in (the DPIA), ``.contact`` keeps an address's lines.
STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:64rem;margin:1.2rem auto;"
    "color:#1f2328;padding:0 1rem}p,li{line-height:1.4}"  # tables and facts stay compact: a run fits a screen
    "h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1rem 0 .4rem}"
    ".notice{background:#fff8c5;border-left:4px solid #d4a72c;padding:.5rem .8rem}"
    ".warn{background:#ffebe9;border-left:4px solid #cf222e;padding:.5rem .8rem;font-weight:600}"
    ".ok{background:#dafbe1;border-left:4px solid #1a7f37;padding:.5rem .8rem}"
    "table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}"
    "th,td{border-bottom:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}"
    "th{border-bottom-width:2px;hyphens:auto}"
    # a table wider than the page scrolls on its own (on paper, smaller type) instead of leaving the page
    "table{display:block;overflow-x:auto;max-width:100%}@media print{table{font-size:.7rem}}"
    "td.n,th.n{text-align:right}td.n{white-space:nowrap}"
    "tr.flag td{background:#ffebe9}img{max-width:100%}"
    ".open{background:#ffe08a;font-weight:bold}.contact{font-weight:bold;white-space:pre-line}"
    "dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;margin:.8rem 0}dt{font-weight:600}"
    "dd{margin:0}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem;align-items:start}"
    ".small{font-size:.8rem;color:#57606a}"
)


def page(title: str, body: str, language: str) -> str:
    """A whole HTML page: ``title`` (text, escaped here) in the head, ``body`` (HTML) under :data:`STYLE`.

    Examples
    --------
    >>> text = page("Run <1>", "<p>ok</p>", "de")
    >>> text.startswith("<!DOCTYPE html>") and "<title>Run &lt;1&gt;</title>" in text and 'lang="de"' in text
    True
    """
    return (f'<!DOCTYPE html>\n<html lang="{html.escape(language)}"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, numbers: bool = False,
          text_columns: Sequence[int] = (0,), flagged: Sequence[bool] | None = None) -> str:
    """An HTML table of displayed values (each cell as ``str``, escaped here).

    ``numbers`` right-aligns every column but the ``text_columns`` (by position; names such as an
    institution, a decision or a verdict stay left-aligned and wrap) and keeps those cells on one line
    (:data:`STYLE`'s ``.n``); ``flagged`` marks rows (``tr.flag``, a red background).

    Examples
    --------
    >>> table(["a", "b"], [[1, "<x>"]], flagged=[True])
    '<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr class="flag"><td>1</td><td>&lt;x&gt;</td></tr></tbody></table>'
    >>> table(["who", "n", "verdict"], [["ALV", 3, "ok"]], numbers=True, text_columns=(0, 2))
    '<table><thead><tr><th>who</th><th class="n">n</th><th>verdict</th></tr></thead><tbody><tr><td>ALV</td><td class="n">3</td><td>ok</td></tr></tbody></table>'
    """
    esc = html.escape
    words = {i % max(len(header), 1) for i in text_columns}  # -1: the last column
    number = ' class="n"'

    def cells(values: Sequence[object], tag: str) -> str:
        return "".join(f"<{tag}{number if numbers and i not in words else ''}>{esc(str(x))}</{tag}>"
                       for i, x in enumerate(values))

    head = cells(header, "th")
    marks = flagged if flagged is not None else [False] * len(rows)
    body = "".join(("<tr class=\"flag\">" if mark else "<tr>") + cells(row, "td") + "</tr>"
                   for row, mark in zip(rows, marks, strict=True))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
