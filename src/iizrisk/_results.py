"""One protocol for iizrisk's result objects (lifelines' "one printer"): show, plot, write.

Every analysis result -- a fairness audit, an effect estimate, a survival
curve, a study, a validation report -- answers the same five questions:

``summary``
    the main table, a :class:`pandas.DataFrame`;
``print_summary(decimals=3, file=None)``
    *prints* it: plain text in a terminal (``summary_text()``), HTML through
    ``IPython.display`` in a Jupyter notebook (``_repr_html_()``); with
    ``file`` always the text into that stream. Nothing goes to the log;
``_repr_html_()``
    the notebook's rich display;
``plot(ax=None)``
    the main plot on ``ax`` (a new figure when None); returns the axes;
``to_dir(path, min_cell_size=None, plots=True, language=None, xlsx=None)``
    writes the *suppressed* tables (:mod:`iizrisk.suppression`, the one
    disclosure-control helper) as CSV (and xlsx) for people and Parquet for
    machines, and the plots as PNG, into ``path``; returns the files written,
    in order. Plots are drawn from the suppressed tables only, so a figure
    never shows a hidden cell.

Adopting it
-----------
Inherit :class:`ResultMixin` and provide

* ``summary`` (attribute or property) -- the mixin's default ``summary_text``
  and ``_repr_html_`` render it (override either for a richer display);
* ``_fitted()`` -> bool (default: ``summary`` can be read without
  ``AttributeError``), used by the default displays;
* ``plot(ax=None, ...)`` returning the axes;
* ``_output_tables(k)`` -> list of :class:`OutputTable` -- the tables with
  cells of fewer than ``k`` people hidden;
* ``_output_figures(tables, language)`` -> list of :class:`OutputFigure`
  (optional) -- figures drawn from those suppressed tables, their words in
  ``language`` where the figure is read beyond analysts (English otherwise);
* ``_default_min_cell_size()`` (optional) -- ``k`` when ``to_dir`` gets none
  (default: the object's ``min_cell_size`` attribute, else 5).

Tables for people
-----------------
Every CSV goes through :func:`iizrisk.tables.write_table`, the one writer of
tables people open: ``;`` as separator, UTF-8 with a BOM, formulas
neutralised; with a ``language`` also the headers, band names, the names of
known codes (decisions, exit reasons, policies) and yes/no in
that language and risks in percent (:mod:`iizrisk.tables`). ``language``
None (the default) keeps the column codes as headers; a code the catalogue
lacks ("FR", "fr-CH") raises :class:`~iizrisk.errors.ConfigError` before
anything is written (:func:`iizrisk._texts.check_language`). With ``xlsx`` each
table is also written as ``<name>.xlsx`` (a frozen header, widths that fit).
An object may carry its defaults in ``output_language`` and ``output_xlsx``
(a command sets them on the object it built; ``to_dir``'s arguments win).
An :class:`OutputTable`'s :class:`~iizrisk.store.CsvFormat` says only whether
its index is written (made a column first, in the CSV and the Parquet file),
its ``float_format`` and its ``na_rep``: its separator and BOM are not used,
every table is written the Swiss way (the ``,`` CSV without a BOM that the
audit and the evaluation once wrote is gone).
"""

from __future__ import annotations

import html
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ._checks import whole_number
from ._texts import check_language
from .store import (
    SWISS_CSV,
    CsvFormat,
    make_dirs,
    write_csv_atomic,
    write_png_atomic,
)
from .suppression import check_min_cell_size
from .tables import Namer, write_outputs

__all__ = ["DEFAULT_MIN_CELL_SIZE", "SWISS_CSV", "CsvFormat", "OutputFigure", "OutputTable",
           "ResultMixin", "in_notebook", "write_csv_atomic", "write_png_atomic"]

#: ``k`` of :mod:`iizrisk.suppression` when neither the caller nor the object says otherwise.
DEFAULT_MIN_CELL_SIZE = 5


@dataclass(frozen=True)
class OutputTable:
    """One suppressed table of :meth:`ResultMixin.to_dir`: ``<name>.csv`` and/or ``<name>.parquet``.

    ``csv`` None writes no CSV (nor xlsx); ``parquet`` False no Parquet. A
    meaningful index is made a column first (in the CSV, the xlsx and the
    Parquet file) when ``csv.index`` is set. Of ``csv`` only ``index``,
    ``float_format`` and ``na_rep`` count: every CSV is written by
    :func:`iizrisk.tables.write_table` (``;``, BOM). ``rounding`` (column ->
    decimals) rounds those columns in the CSV and the xlsx written in a
    language (the Parquet file keeps every digit); ``names`` names a column's
    codes there (the Parquet file keeps the codes).
    """

    name: str
    frame: pd.DataFrame
    csv: CsvFormat | None = SWISS_CSV
    parquet: bool = True
    rounding: Mapping[str, int] | None = None
    #: column -> ``namer(code, language)``: the names people read in the CSV and the xlsx (None keeps a code)
    names: Mapping[str, Namer] | None = None


@dataclass(frozen=True)
class OutputFigure:
    """One figure of :meth:`ResultMixin.to_dir`: ``<name>.png``."""

    name: str
    figure: Any  # matplotlib Figure
    dpi: int = 96


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel), False in a terminal or without IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:  # not imported by anyone: certainly no notebook
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # pragma: no cover - a broken IPython is a terminal
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


class ResultMixin:
    """``summary``, ``print_summary``, ``_repr_html_``, ``plot`` and ``to_dir`` for a result object.

    See the module documentation for what a class provides to adopt it.
    """

    #: The files' permissions: False gives ``0666 & ~umask``, True owner-only (0600).
    _private_files: bool = False
    #: Language of the tables' headers, band names and yes/no when ``to_dir`` gets none (None: the codes).
    output_language: str | None = None
    #: Whether ``to_dir`` also writes each table as xlsx when it is not told.
    output_xlsx: bool = False

    # ------------------------------------------------------------------ to provide
    summary: Any  # a DataFrame (attribute or property)

    def _fitted(self) -> bool:
        try:
            self.summary  # noqa: B018 - a property that raises when not fitted
        except AttributeError:
            return False
        return True

    def _title(self) -> str:
        return type(self).__name__

    def _output_tables(self, k: int) -> list[OutputTable]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} writes no tables")

    def _output_figures(self, tables: Sequence[OutputTable], language: str = "en") -> list[OutputFigure]:
        return []

    def _default_min_cell_size(self) -> int:
        k = getattr(self, "min_cell_size", None)
        return DEFAULT_MIN_CELL_SIZE if k is None else check_min_cell_size(k)

    # ------------------------------------------------------------------ display
    def summary_text(self, decimals: int = 3) -> str:
        """The text that :meth:`print_summary` prints."""
        table = self.summary
        whole_number(decimals, "decimals", 0, 15, unit="digits", example="3")
        body = table.to_string(float_format=lambda v: f"{v:.{decimals}f}") if len(table) else "(empty)"
        return f"{self._title()}\n{body}"

    def print_summary(self, decimals: int = 3, file=None) -> None:
        """Print the summary: HTML in a Jupyter notebook, plain text elsewhere or into ``file``.

        Parameters
        ----------
        decimals : int, default 3
            Decimals of the text display.
        file : writable text stream, optional
            Print the text there (default: ``sys.stdout``, or the notebook's HTML display).
        """
        if file is None and in_notebook():
            try:
                from IPython.display import HTML, display
            except ImportError:  # pragma: no cover - in_notebook needs IPython
                pass
            else:
                display(HTML(self._repr_html_()))
                return
        print(self.summary_text(decimals), file=file if file is not None else sys.stdout)

    def _repr_html_(self) -> str:
        if not self._fitted():
            return f"<b>{html.escape(type(self).__name__)}</b>: not fitted"
        return (f"<div><b>{html.escape(self._title())}</b>"
                f"{self.summary.to_html(float_format=lambda v: f'{v:.3f}', na_rep='&middot;')}</div>")

    # ------------------------------------------------------------------ files
    def to_dir(self, path: str | Path, *, min_cell_size: int | None = None, plots: bool = True,
               language: str | None = None, xlsx: bool | None = None) -> list[Path]:
        """Write the suppressed tables (CSV, xlsx and/or Parquet) and, with ``plots``, the PNG figures.

        Parameters
        ----------
        path : str or Path
            Output folder (created when missing). Each file is written atomically.
        min_cell_size : int, optional
            Cells of fewer people are hidden (:mod:`iizrisk.suppression`); default the
            object's own ``min_cell_size``, else 5.
        plots : bool, default True
        language : {"de", "fr", "it", "en"}, optional
            Headers, band names and yes/no of the CSV and xlsx tables in this language, risks
            in percent (:func:`iizrisk.tables.write_table`); default the object's
            ``output_language``, else the column codes. The figures that coordinators
            or the data-protection officer read (policies, case, fairness) take the
            same language (default English).
        xlsx : bool, optional
            Also write each table as ``<name>.xlsx``; default the object's ``output_xlsx``.

        Returns
        -------
        list of Path
            The files written, tables first (CSV, xlsx, Parquet per table), then figures.

        Raises
        ------
        ConfigError
            ``language`` is not one of the catalogue's (:func:`iizrisk._texts.check_language`).
        """
        return self._write_dir(path, min_cell_size=min_cell_size, plots=plots, language=language, xlsx=xlsx)

    def _write_dir(self, path: str | Path, *, min_cell_size: int | None, plots: bool,
                   language: str | None = None, xlsx: bool | None = None) -> list[Path]:
        k = self._default_min_cell_size() if min_cell_size is None else check_min_cell_size(min_cell_size)
        lang = self.output_language if language is None else language
        if lang is not None:  # "FR" or "fr-CH" is refused before anything is written, not written in English
            check_language(lang)
        with_xlsx = self.output_xlsx if xlsx is None else bool(xlsx)
        out = make_dirs(path)
        tables = self._output_tables(k)
        written: list[Path] = []
        for t in tables:
            fmt = t.csv if t.csv is not None else SWISS_CSV
            frame = t.frame.reset_index() if fmt.index else t.frame
            written += write_outputs(frame, out, t.name, language=lang, csv=t.csv is not None,
                                     xlsx=with_xlsx and t.csv is not None, parquet=t.parquet,
                                     private=self._private_files, float_format=fmt.float_format,
                                     na_rep=fmt.na_rep, rounding=t.rounding, names=t.names)
        if plots:
            for f in self._output_figures(tables, lang or "en"):  # the tables' language, else English
                written.append(write_png_atomic(f.figure, out / f"{f.name}.png", dpi=f.dpi,
                                                private=self._private_files))
        return written
