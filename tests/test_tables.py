"""Tables people open (iizrisk.tables): one writer, ';' and a BOM, no formula cells, headers in four languages.

Issue 17, item 5: "CSV outputs open as separate columns in a ';'-separated
reader, with no formula cells."
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iizrisk import tables
from iizrisk._results import CsvFormat, OutputTable, ResultMixin
from iizrisk._texts import LANGUAGES
from iizrisk.tables import (
    FORMULA_START,
    header,
    present,
    read_table,
    write_outputs,
    write_table,
    write_xlsx,
)

SRC = Path(tables.__file__).parent
BOM = b"\xef\xbb\xbf"


# --------------------------------------------------------------------------- what a spreadsheet sees
def spreadsheet_rows(path: Path) -> list[list[str]]:
    """The cells as a ';'-separated reader (Excel with Swiss settings) sees them; the file must have a BOM."""
    raw = path.read_bytes()
    assert raw.startswith(BOM), f"{path.name}: no UTF-8 BOM"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def formula_cells(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would run as a formula: text starting with = + - @ tab CR (numbers such as -0.5 are fine)."""
    return [c for row in rows for c in row if c.startswith(FORMULA_START) and not _is_number(c)]


def assert_opens_as_columns(path: Path) -> list[list[str]]:
    rows = spreadsheet_rows(path)
    assert rows, path.name
    width = len(rows[0])
    assert all(len(r) == width for r in rows), f"{path.name}: rows of {sorted({len(r) for r in rows})} columns"
    assert formula_cells(rows) == [], path.name
    return rows


def assert_xlsx_safe(path: Path) -> None:
    from openpyxl import load_workbook

    wb = load_workbook(path)
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", (path.name, ws.title)
        cells = [c for row in ws.iter_rows() for c in row]
        assert not [c.coordinate for c in cells if c.data_type == "f"], path.name
        assert not [c.value for c in cells if isinstance(c.value, str) and c.value.startswith("=")], path.name


# --------------------------------------------------------------------------- the writer
TEXT = st.text(alphabet=st.sampled_from(list("ab ü;,\"'\n\r\t=+-@1.é")), max_size=8)


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 6))
    names = draw(st.lists(TEXT.filter(bool), min_size=1, max_size=5, unique=True))
    data = {}
    for name in names:
        kind = draw(st.sampled_from(["text", "int", "float", "bool", "nullable_bool", "date", "risk"]))
        if kind == "text":
            values = draw(st.lists(st.none() | TEXT, min_size=n, max_size=n))
            data[name] = pd.Series(values, dtype=object)
        elif kind == "int":
            data[name] = pd.Series(draw(st.lists(st.integers(-10 ** 6, 10 ** 6), min_size=n, max_size=n)),
                                   dtype=np.int64)
        elif kind in ("float", "risk"):
            values = draw(st.lists(st.floats(-1e6, 1e6) | st.just(np.nan), min_size=n, max_size=n))
            data["risk" if kind == "risk" else name] = pd.Series(values, dtype=np.float64)
        elif kind == "bool":
            data[name] = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        elif kind == "nullable_bool":
            data[name] = pd.Series(draw(st.lists(st.none() | st.booleans(), min_size=n, max_size=n)),
                                   dtype="boolean")
        else:
            values = draw(st.lists(st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
                                   min_size=n, max_size=n))
            data[name] = pd.to_datetime(pd.Series(values, dtype=object))
    return pd.DataFrame(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(df=frames(), language=st.sampled_from([None, *LANGUAGES]))
def test_any_frame_opens_as_separate_columns_without_formula_cells(tmp_path, df, language):
    path = write_table(df, tmp_path / "t.csv", language=language)
    rows = spreadsheet_rows(path)
    assert len(rows) == len(df) + 1  # line breaks inside cells are quoted, not new rows
    assert all(len(r) == df.shape[1] for r in rows)
    assert formula_cells(rows) == []
    # the neutralising ' is the only change to a text cell's content (line ends aside)
    for j, col in enumerate(df.columns):
        if df[col].dtype == object:
            written = [r[j] for r in rows[1:]]
            want = ["" if v is None else ("'" + v if v.startswith(FORMULA_START) else v).replace("\r\n", "\n")
                    .replace("\r", "\n") for v in df[col]]
            assert written == want


def test_risks_are_percentages_only_with_a_language():
    df = pd.DataFrame({"risk": [0.41449, np.nan], "risk_change": [-0.052, 0.0], "mean_predicted": [0.3, 0.2],
                       "flag_rate": [0.1, 0.2], "risk_band": ["high", "low"], "suppressed": [True, False],
                       "significant": pd.array([True, None], dtype="boolean")})
    de = present(df, "de")
    assert de["Risiko (%)"].tolist()[0] == 41.4 and np.isnan(de["Risiko (%)"].tolist()[1])
    assert de[header("risk_change", "de")].tolist() == [-5.2, 0.0]
    # a group's mean predicted risk stays on the scale of its observed rate; rates stay proportions
    assert de[header("mean_predicted", "de")].tolist() == [0.3, 0.2]
    assert de[header("flag_rate", "de")].tolist() == [0.1, 0.2]
    assert de["Risikostufe"].tolist() == ["hoch", "tief"]
    assert de[header("suppressed", "de")].tolist() == ["ja", "nein"]
    significant = de[header("significant", "de")]
    assert significant.iloc[0] == "ja" and pd.isna(significant.iloc[1])  # NA stays empty
    codes = present(df, None)
    assert list(codes.columns) == list(df.columns) and codes["risk"].tolist()[0] == 0.41449


def test_reason_weights_are_rounded_only_for_a_reader():
    df = pd.DataFrame({"reason_1_contribution": [1.1572703835537022, -0.00049, np.nan], "n": [1, 2, 3]})
    de = present(df, "de")
    assert [str(v) for v in de[header("reason_1_contribution", "de")].tolist()[:2]] == ["1.157", "0.0"]
    assert np.isnan(de[header("reason_1_contribution", "de")].iloc[2]) and de[header("n", "de")].tolist() == [1, 2, 3]
    assert present(df, None)["reason_1_contribution"].tolist()[0] == 1.1572703835537022


@pytest.mark.parametrize("language", ["de", "fr", "it"])
def test_codes_in_known_columns_are_written_by_their_names(tmp_path, language):
    """A worklist's "Letzter Entscheid" showed joint_assessment_proposed, and a case's timeline the exit reason
    pension, under headers in the list's language (while the review file's drop-down offered the names)."""
    from iizrisk._texts import text

    df = pd.DataFrame({"rank": [1, 2, 3],
                       "last_decision": pd.Series(["joint_assessment_proposed", "consent_declined", None], dtype=object),
                       "decision": pd.Series(["data_error", "a_deployments_own", None], dtype=object),
                       "exit_reason": pd.Categorical(["pension", "relocation", "unknown"]),
                       "risk_band": ["high", "medium", "low"]})
    csv_path, xlsx_path, parquet_path = write_outputs(df, tmp_path, "wl", language=language, xlsx=True)
    want = {
        "last_decision": [text("review.decisions.joint_assessment_proposed", language),
                          text("review.decisions.consent_declined", language), ""],
        "decision": [text("review.decisions.data_error", language), "a_deployments_own", ""],  # unknown: as it is
        "exit_reason": [text(f"exit_reasons.{r}", language) for r in ("pension", "relocation", "unknown")],
        "risk_band": [text(f"risk_bands.{b}", language) for b in ("high", "medium", "low")],
    }
    rows = spreadsheet_rows(csv_path)
    from openpyxl import load_workbook

    cells = [["" if c is None else c for c in row] for row in load_workbook(xlsx_path).active.iter_rows(values_only=True)]
    for got in (rows, cells):
        for code, names in want.items():
            j = list(got[0]).index(header(code, language))
            assert [r[j] for r in got[1:]] == names, (code, got)
    assert "pension" not in csv_path.read_text(encoding="utf-8-sig")
    machine = pd.read_parquet(parquet_path)  # for machines: the codes
    assert machine["last_decision"].tolist()[:2] == ["joint_assessment_proposed", "consent_declined"]
    assert machine["exit_reason"].astype(str).tolist() == ["pension", "relocation", "unknown"]
    assert present(df, None)["decision"].tolist()[0] == "data_error"  # no language: codes


def test_every_exit_reason_of_the_data_contract_has_a_name_in_every_language():
    from iizrisk._texts import load_locale
    from iizrisk.spells import EXIT_REASONS

    for lang in LANGUAGES:
        names = load_locale(lang)["exit_reasons"]
        assert set(EXIT_REASONS) <= set(names), (lang, sorted(set(EXIT_REASONS) - set(names)))
        assert len(set(names.values())) == len(names), lang  # no two reasons read alike
        if lang != "en":
            assert all(tables.value_name("exit_reason", r, lang) != r for r in EXIT_REASONS), lang


def test_shares_are_rounded_and_counts_whole_only_for_a_reader(tmp_path):
    """Shares were written with 17 digits ("Quota 0.43871951219512195") and counts with a hidden cell as floats
    ("7505.0")."""
    df = pd.DataFrame({"combination": ["ALV only", "two or more", "Total"], "persons": [7505.0, np.nan, 17107.0],
                       "share": [0.43871951219512195, np.nan, 1.0], "n_treated": [3.0, 4.0, 5.0],
                       "estimate": [1.0, 2.0, 2.5], "value": [1 / 3, 2.0, np.nan]})
    rows = spreadsheet_rows(write_table(df, tmp_path / "t.csv", language="de", rounding={"value": 2}))
    assert rows[1:] == [["nur ALV", "7505", "0.439", "3", "1.0", "0.33"],
                        ["zwei oder mehr Systeme", "", "", "4", "2.0", "2.0"],
                        ["Total", "17107", "1.0", "5", "2.5", ""]]
    from openpyxl import load_workbook

    xlsx = write_xlsx(df, tmp_path / "t.xlsx", language="de", rounding={"value": 2})
    assert list(load_workbook(xlsx).active.iter_rows(values_only=True))[1] == ("nur ALV", 7505, 0.439, 3, 1, 0.33)
    codes = spreadsheet_rows(write_table(df, tmp_path / "codes.csv", rounding={"value": 2}))  # for machines
    assert codes[1] == ["ALV only", "7505.0", "0.43871951219512195", "3.0", "1.0", "0.3333333333333333"]


def test_csv_options_and_index_free_output(tmp_path):
    df = pd.DataFrame({"estimate": [1 / 3], "n": pd.array([None], dtype="Int64")}, index=["x"])
    path = write_table(df, tmp_path / "t.csv", float_format="%.3g", na_rep="NA")
    assert path.read_bytes() == BOM + b"estimate;n\n0.333;NA\n"


# --------------------------------------------------------------------------- headers in four languages
def _columns(lang: str) -> dict[str, str]:
    return json.loads((SRC / "locale" / f"{lang}.json").read_text(encoding="utf-8"))["table"]["columns"]


def test_every_header_names_one_code_in_every_language():
    seen: dict[str, str] = {}
    codes = set().union(*(_columns(lang) for lang in LANGUAGES))
    for lang in LANGUAGES:
        cols = _columns(lang)
        assert set(cols) == set(_columns("en")), lang  # the same codes in every language
        for code, name in cols.items():
            assert seen.setdefault(name, code) == code, f"{lang}: {name!r} names {seen[name]!r} and {code!r}"
            assert name == code or name not in codes, f"{lang}: the header {name!r} is another column's code"
            assert "ß" not in name  # Swiss German


@pytest.mark.parametrize("language", LANGUAGES)
def test_headers_read_back_as_codes(tmp_path, language):
    codes = [c for c in _columns(language) if "_n" not in c or not c.startswith("reason_n")]
    codes += ["reason_1", "reason_2_text", "reason_3_contribution", "not_in_the_catalogue"]
    df = pd.DataFrame({c: [1] for c in codes})
    path = write_table(df, tmp_path / "t.csv", language=language)
    head = spreadsheet_rows(path)[0]
    assert head == [header(c, language) for c in codes]
    assert head[-1] == "not_in_the_catalogue"  # a column the catalogue does not name keeps its code
    assert list(read_table(path).columns) == codes
    xlsx = write_table(df, tmp_path / "t.xlsx", language=language)
    assert list(read_table(xlsx).columns) == codes


def test_the_tables_people_see_most_are_named_in_every_language():
    wanted = {"n", "flag_rate", "precision", "calibration_gap", "verdict", "persons", "share", "rate", "from",
              "to", "estimate", "suppressed", "n_treated", "covariate", "smd_after", "at_risk", "severity",
              "problem", "fix", "n_rows"}
    for lang in LANGUAGES:
        assert wanted <= set(_columns(lang)), lang
        assert all(header(c, lang) != c for c in wanted)


# --------------------------------------------------------------------------- xlsx
def test_xlsx_round_trip(tmp_path):
    from openpyxl import load_workbook

    df = pd.DataFrame({"rank": [1, 2], "risk": [0.41449, 0.1], "risk_band": ["high", "low"],
                       "new_on_list": [True, False], "as_of": pd.to_datetime(["2025-12-31", "2025-12-31"]),
                       "case_ids": ["=HYPERLINK(\"http://x\")", "A-1"], "note": ["+41 00", "@SUM(1)"]})
    path = write_xlsx(df, tmp_path / "ALV list.xlsx", language="de")
    assert path.read_bytes()[:2] == b"PK"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # atomic: no temporary file left
    ws = load_workbook(path).active
    assert ws.title == "ALV list" and ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:G3"  # filter buttons on the header, over every row
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert rows[0] == ["Rang", "Risiko (%)", "Risikostufe", "Neu auf der Liste", "Stichtag", "Fall-Nr.", "Bemerkung"]
    # the date is a date cell (sorts and filters as a date), shown as in the CSV
    assert rows[1] == [1, 41.4, "hoch", "ja", dt.datetime(2025, 12, 31), "'=HYPERLINK(\"http://x\")", "'+41 00"]
    assert ws["E2"].number_format.lower() == "yyyy-mm-dd" and ws["E2"].is_date
    assert rows[2][-1] == "'@SUM(1)"
    assert all(c.font.bold for c in ws[1])
    widths = [ws.column_dimensions[c].width for c in "ABCDEFG"]
    assert all(8 <= w <= 62 for w in widths) and widths[5] > widths[0]  # the long case number gets room
    assert_xlsx_safe(path)
    back = read_table(path)
    assert list(back.columns) == list(df.columns) and back["risk"].tolist() == [41.4, 10.0]
    # the CSV holds the same cells
    csv_rows = spreadsheet_rows(write_table(df, tmp_path / "ALV.csv", language="de"))
    assert csv_rows[1][5] == rows[1][5] and csv_rows[0] == rows[0] and csv_rows[1][4] == "2025-12-31"


def test_xlsx_dates_are_date_cells_and_a_missing_date_an_empty_cell(tmp_path):
    from openpyxl import load_workbook

    df = pd.DataFrame({"first_listed": pd.to_datetime(["2025-11-30", None]).astype("datetime64[s]"),
                       "last_decision_date": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[s]")})
    ws = load_workbook(write_xlsx(df, tmp_path / "t.xlsx", language="fr")).active
    assert [[c.value for c in r] for r in ws.iter_rows(min_row=2)] == [[dt.datetime(2025, 11, 30), None],
                                                                        [None, None]]
    back = read_table(tmp_path / "t.xlsx")
    assert back["first_listed"].iloc[0] == pd.Timestamp("2025-11-30")


def test_a_text_cell_starting_with_equals_is_never_a_formula(tmp_path, monkeypatch):
    # the guard behind the neutralising ': even text that present() left alone is stored as text
    monkeypatch.setattr(tables, "present", lambda df, language, percent=(), rounding=None: df)
    path = write_xlsx(pd.DataFrame({"a": ["=1+1", "x"], "b": [1, 2]}), tmp_path / "t.xlsx")
    from openpyxl import load_workbook

    cell = load_workbook(path).active["A2"]
    assert cell.value == "=1+1" and cell.data_type == "s"


def test_write_outputs_writes_people_tables_and_machine_parquet(tmp_path):
    df = pd.DataFrame({"risk": [0.25], "institution": ["ALV"]})
    files = write_outputs(df, tmp_path, "t", language="fr", xlsx=True)
    assert [p.name for p in files] == ["t.csv", "t.xlsx", "t.parquet"]
    assert spreadsheet_rows(files[0])[1] == ["25.0", "ALV"]
    pd.testing.assert_frame_equal(pd.read_parquet(files[2]), df)  # codes and probabilities for machines


# --------------------------------------------------------------------------- every result object
class _Tables(ResultMixin):
    """A result object with every kind of OutputTable: the Swiss, the old plain, an index, Parquet only."""

    summary = pd.DataFrame({"a": [1]})

    def plot(self, ax=None):  # pragma: no cover - not drawn here
        return ax

    def _output_tables(self, k: int) -> list[OutputTable]:
        frame = pd.DataFrame({"suppressed": [False, True], "estimate": [-0.5, np.nan],
                              "problem": ["=cmd|' /C calc'!A0", "ok"]}, index=pd.Index(["x", "y"], name="outcome"))
        return [OutputTable("swiss", frame.reset_index()), OutputTable("plain", frame.reset_index(), csv=CsvFormat(sep=",", bom=False)),
                OutputTable("indexed", frame, csv=CsvFormat(index=True)),
                OutputTable("machines", frame.reset_index(), csv=None)]


def test_to_dir_writes_every_csv_the_swiss_way(tmp_path):
    obj = _Tables()
    files = obj.to_dir(tmp_path / "codes", plots=False)
    assert [p.name for p in files] == ["swiss.csv", "swiss.parquet", "plain.csv", "plain.parquet", "indexed.csv",
                                       "indexed.parquet", "machines.parquet"]
    for p in files:
        if p.suffix == ".csv":
            rows = assert_opens_as_columns(p)
            assert rows[0] == ["outcome", "suppressed", "estimate", "problem"], p.name  # index made a column
    assert list(pd.read_parquet(tmp_path / "codes" / "indexed.parquet").columns)[0] == "outcome"
    files = obj.to_dir(tmp_path / "it", plots=False, language="it", xlsx=True)
    assert [p.name for p in files][:3] == ["swiss.csv", "swiss.xlsx", "swiss.parquet"]
    assert "machines.xlsx" not in {p.name for p in files}  # a table not for people gets no sheet either
    rows = assert_opens_as_columns(tmp_path / "it" / "plain.csv")
    assert rows[0] == [header(c, "it") for c in ("outcome", "suppressed", "estimate", "problem")]
    assert rows[1][1] == "no" and rows[2][1] == "sì"
    assert_xlsx_safe(tmp_path / "it" / "indexed.xlsx")
    # the object's own defaults, as a command sets them
    obj.output_language, obj.output_xlsx = "fr", True
    names = {p.name for p in obj.to_dir(tmp_path / "fr", plots=False)}
    assert "plain.xlsx" in names and header("estimate", "fr") in (tmp_path / "fr" / "plain.csv").read_text("utf-8-sig")


def _result_objects():
    """The result objects the tests build cheaply, each with its to_dir."""
    from iizrisk.evaluation import IPWEstimator, KaplanMeier, PropensityScoreMatching
    from iizrisk.fairness import FairnessAudit
    from iizrisk.validate import check_spells

    rng = np.random.default_rng(0)
    n = 600
    severity = rng.normal(size=n)
    t = rng.random(n) < 1 / (1 + np.exp(1 - severity))
    table = pd.DataFrame({"severity": severity, "flag": (rng.random(n) < 0.3).astype(float), "treated": t,
                          "y": (rng.random(n) < 0.3 + 0.1 * t).astype(float)})
    data = pd.DataFrame({"score": np.linspace(0, 1, 400), "sex": ["F", "M"] * 200})
    data["label"] = np.random.default_rng(1).random(400) < data["score"]
    rows = pd.DataFrame({"person_id": ["p1", "=1+1"] + [f"p{i}" for i in range(10)],
                         "institution": ["ALV", "XYZ"] + ["ALV"] * 10,
                         "start_date": pd.to_datetime(["2024-01-05"] * 12),
                         "end_date": pd.to_datetime(["2024-01-01"] + [None] * 11)})
    return {
        "ipw": IPWEstimator(n_bootstrap=10, random_state=0).fit(table, "treated", "y", ["severity", "flag"]),
        "matching": PropensityScoreMatching(n_bootstrap=10, random_state=0).fit(table, "treated", "y",
                                                                                  ["severity", "flag"]),
        "kaplan_meier": KaplanMeier().fit(rng.integers(1, 30, 200).astype(float), rng.random(200) < 0.7,
                                          label="arm"),
        "fairness": FairnessAudit(groups=["sex"], capacity=40, n_bootstrap=0, max_gap=1.0).fit(data),
        "validation": check_spells(rows, source="demo")[0],
    }


@pytest.fixture(scope="module")
def result_objects():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _result_objects()


@pytest.mark.parametrize("language", [None, "de", "fr"])
def test_every_result_object_writes_swiss_csv_and_safe_xlsx(result_objects, tmp_path, language):
    for name, obj in result_objects.items():
        out = tmp_path / name
        if name == "fairness":  # as `iizrisk audit` does it: the object's defaults
            obj.output_language, obj.output_xlsx = language, True
            files = obj.to_dir(out, plots=False)
            obj.output_language, obj.output_xlsx = None, False
        else:
            files = obj.to_dir(out, plots=False, language=language, xlsx=True)
        csvs = [p for p in files if p.suffix == ".csv"]
        assert csvs, name
        for p in csvs:
            rows = assert_opens_as_columns(p)
            frame = read_table(p, dtype=str, keep_default_na=False)
            assert len(frame) == len(rows) - 1
            parquet = p.with_suffix(".parquet")
            if parquet.exists():  # the same columns for machines, as codes
                assert list(frame.columns) == list(pd.read_parquet(parquet).columns), p.name
            xlsx = p.with_suffix(".xlsx")
            assert xlsx in files, p.name
            assert_xlsx_safe(xlsx)
            assert list(read_table(xlsx).columns) == list(frame.columns)


def test_the_indicators_are_tables_people_open(tmp_path):
    from iizrisk import _time
    from iizrisk.indicators import bfs_indicators

    rng = np.random.default_rng(2)
    n = 400
    starts = _time.day("2019-01-01") + rng.integers(0, 900, n)
    spells = pd.DataFrame({"person_id": [f"p{i % 120}" for i in range(n)],
                           "institution": rng.choice(["ALV", "SH", "IV"], n),
                           "start_date": _time.from_days(starts),
                           "end_date": _time.from_days(starts + rng.integers(10, 300, n))})
    res = bfs_indicators(spells, 2020, min_cell_size=5)
    files = res.to_dir(tmp_path, language="it", xlsx=True)
    assert len(files) == 3 * len(res.tables)
    for p in files:
        if p.suffix == ".csv":
            assert_opens_as_columns(p)
            assert list(read_table(p).columns) == list(res[p.stem].columns)
        elif p.suffix == ".xlsx":
            assert_xlsx_safe(p)


# --------------------------------------------------------------------------- one writer
#: Files that may write CSV themselves: the writers, and files that are not for people to open.
_OWN_CSV = {
    "store.py": "the atomic writer every CSV goes through",
    "tables.py": "the one writer of tables people open",
    "synth/_exports.py": "simulated institution exports, in the institutions' own formats",
    "_commands/pseudonymise.py": "the pseudonymised export, for iizrisk to read (its report of invalid rows goes "
                                 "through write_table)",
}


def test_no_module_writes_a_csv_of_its_own():
    own = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in _OWN_CSV:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                if name in ("to_csv", "write_csv_atomic", "to_excel"):
                    own.append(f"{rel}:{node.lineno} {name}")
    assert own == [], f"write tables people open through iizrisk.tables.write_table: {own}"


def test_the_validation_report_for_the_data_steward(tmp_path, capsys):
    import warnings

    from iizrisk.cli import main

    pid = "0123456789abcdef" * 4
    (tmp_path / "spells.csv").write_text("person_id;institution;case_id;start_date;end_date\n"
                                         f"{pid};ALV;=1+1;01.02.2023;31.05.2023\n{pid};XYZ;Z;31.02.2024;\n",
                                         encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the row numbers are lists: no text, and no warning either
        assert main(["validate", str(tmp_path / "spells.csv"), "--report", str(tmp_path / "r.csv")]) == 1
        assert main(["validate", str(tmp_path / "spells.csv"), "--report", str(tmp_path / "r.xlsx")]) == 1
    capsys.readouterr()
    rows = assert_opens_as_columns(tmp_path / "r.csv")
    assert rows[0][:4] == ["severity", "source", "column", "problem"] and len(rows) == 3
    assert_xlsx_safe(tmp_path / "r.xlsx")
    assert read_table(tmp_path / "r.xlsx")["problem"].tolist() == read_table(tmp_path / "r.csv")["problem"].tolist()


def test_a_persons_information_tables_are_in_their_language(tmp_path):
    from iizrisk.information import InformationDocument

    empty = pd.DataFrame()
    doc = InformationDocument(institution="ALV", as_of=dt.date(2025, 12, 31), language="it", deployment="demo",
                              contact="iiz@example.ch",
                              registrations=pd.DataFrame({"institution": ["ALV"], "start_date": ["2025-01-02"]}),
                              interventions=empty, flags=empty, lists=empty, reviews=empty,
                              scores=pd.DataFrame({"as_of": ["2025-12-31"], "risk": [0.123], "risk_band": ["medium"]}))
    files = doc.to_dir(tmp_path, plots=False)
    assert [p.name for p in files] == ["registrations.csv", "registrations.parquet", "scores.csv", "scores.parquet"]
    rows = assert_opens_as_columns(tmp_path / "scores.csv")
    assert rows[0] == [header(c, "it") for c in ("as_of", "risk", "risk_band")] and rows[1][1] == "12.3"
    assert pd.read_parquet(tmp_path / "scores.parquet")["risk"].tolist() == [0.123]  # machines: probabilities
    assert spreadsheet_rows(doc.to_dir(tmp_path / "en", plots=False, language="en")[0])[0][1] == header(
        "start_date", "en")


def test_iizrisk_audit_writes_tables_people_open_and_xlsx(tmp_path, random_spells, capsys):
    from iizrisk.cli import main
    from iizrisk.model import save_model, train
    from iizrisk.store import write_parquet_atomic

    key = b"a model signing key of the table tests, 32+ bytes"
    model, _ = train(random_spells, outcome="revolving_door", compare=False, max_train_rows=3000, model="logistic")
    (tmp_path / "model.key").write_bytes(key)
    save_model(model, tmp_path / "model", key=key)
    write_parquet_atomic(random_spells, tmp_path / "spells.parquet")
    out = tmp_path / "audit"
    code = main(["audit", "--model", str(tmp_path / "model"), "--spells", str(tmp_path / "spells.parquet"),
                 "--as-of", "2023-02-28", "--out", str(out), "--groups", "age_band", "--bootstrap", "0",
                 "--language", "fr", "--xlsx", "--key-file", str(tmp_path / "model.key")])
    assert code == 0, capsys.readouterr().err
    for stem in ("fairness_summary", "fairness_gaps", "fairness_calibration"):
        rows = assert_opens_as_columns(out / f"{stem}.csv")
        assert rows[0][:2] == [header("attribute", "fr"), header("group", "fr")]  # the card's language
        assert list(read_table(out / f"{stem}.csv").columns) == list(pd.read_parquet(out / f"{stem}.parquet").columns)
        assert_xlsx_safe(out / f"{stem}.xlsx")
    assert json.loads((out / "model_card.json").read_text())["language"] == "fr"


def test_an_intervals_bounds_are_named_with_their_level_in_every_language():
    from iizrisk.tables import _codes_of_headers as T_codes
    from iizrisk.tables import header

    assert header("lower 90%", "de") == "Untere Grenze (90 %)"
    assert header("vs_risk upper 95%", "it") == "Differenza rispetto ai primi k per rischio: limite superiore (95 %)"
    assert header("upper 99.5%", "fr") == "Borne supérieure (99.5 %)"
    assert header("naive_lower_95", "fr") == "Comparaison naïve, intervalle à 95 % : borne inférieure"
    assert header("upper_90", "de") == "90-%-Intervall: obere Grenze"
    back = T_codes()
    assert back["90-%-Intervall: obere Grenze"] == "upper_90" and back["Borne inférieure (95 %)"] == "lower 95%"
    for code in ("lower 95", "lower95%", "risk lower 95%", "lower_95%", "naive lower 95%"):  # the code itself
        assert header(code, "de") == code


@settings(max_examples=200, deadline=None)
@given(df=frames(), cat=st.booleans())
def test_small_frames_are_made_safe_as_the_column_wise_reference(df, cat):
    import iizrisk.tables as T

    if cat:  # text as a categorical and as pandas' str, besides the strategy's object columns
        df = df.assign(**{f"{c}_cat": df[c].astype("category") for c in df.columns if df[c].dtype == object},
                       **{f"{c}_str": df[c].astype("str") for c in df.columns if df[c].dtype == object})
    small = T._safe(df)
    least, T._SMALL_ROWS = T._SMALL_ROWS, -1
    try:
        reference = T._safe(df)
    finally:
        T._SMALL_ROWS = least
    pd.testing.assert_frame_equal(small, reference)


@pytest.mark.parametrize("language", LANGUAGES)
def test_reviews_per_decision_are_headed_by_the_decisions_name(tmp_path, language):
    """The oversight table's headers read "reviews", "proposed_listed_share" and "decision:not_suitable" in a
    German table: codes, where a data-protection officer reads whether a human decides."""
    from iizrisk._texts import text

    codes = ["reviews", "proposed_listed_share", "proposed_override_share", "decision:not_suitable",
             "decision:a_deployments_own"]
    path = write_table(pd.DataFrame({c: [1] for c in codes}), tmp_path / "t.csv", language=language)
    head = spreadsheet_rows(path)[0]
    assert all(h != c for h, c in zip(head, codes, strict=True)), head
    assert text("review.decisions.not_suitable", language) in head[3]
    assert head[4].endswith("a_deployments_own")  # a decision the catalogue does not know: its code
    assert list(read_table(path).columns) == codes
