"""Ingestion: real-world CSV shapes, mapping through the configuration, validation policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from iizrisk.cli import main
from iizrisk.config import Settings
from iizrisk.errors import RawIdentifierError, ValidationError
from iizrisk.io import (
    ingest,
    read_canonical,
    read_csv_text,
    read_interventions,
)
from iizrisk.store import write_parquet_atomic

HEADER = "PERS;INST;FALL;BEGINN;ENDE;GRUND;BEMERKUNG"
# the toy person ids ("p1") of these tests stand in for pseudonyms: an explicit opt-out
TOY_IDS = {"pseudonym_pattern": "p[0-9]+"}


def alv_settings(tmp_path, **extra) -> Settings:
    src = {
        "name": "alv",
        "path": "alv.csv",
        "institution": "ALV",
        "columns": {"PERS": "person_id", "FALL": "case_id", "BEGINN": "start_date", "ENDE": "end_date",
                    "GRUND": "exit_reason", "INST": "institution"},
        "values": {"institution": {"RAV": "ALV"}, "exit_reason": {"Stellenantritt": "employment",
                                                                   "Aussteuerung": "benefit_exhausted"}},
        **extra,
    }
    return Settings.from_dict({"sources": [src], "deployment": TOY_IDS}, base_dir=tmp_path)


def write(tmp_path, text: str, encoding="utf-8", name="alv.csv"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


GOOD = (
    f"{HEADER}\n"
    'p1;RAV;A-1;01.02.2023;31.05.2023;Stellenantritt;"Zürich; Büro Nord"\n'
    "p2;RAV;A-2;2023-03-01;;;Genève\n"
    "p3;ALV;A-3;15.06.2022;14.12.2023;Aussteuerung;\n"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_swiss_csv_in_any_encoding(tmp_path, encoding):
    write(tmp_path, GOOD, encoding)
    res = ingest(alv_settings(tmp_path))
    sp = res.spells
    assert len(sp) == 3 and res.report.ok
    assert sp["institution"].astype(str).tolist() == ["ALV"] * 3
    assert sp["exit_reason"].astype(str).tolist()[::2] == ["employment", "benefit_exhausted"]
    assert sp["start_date"].dt.strftime("%Y-%m-%d").tolist() == ["2023-02-01", "2023-03-01", "2022-06-15"]
    assert pd.isna(sp["end_date"].iloc[1])
    assert sp["BEMERKUNG"].iloc[0] == "Zürich; Büro Nord"  # quoted separator, umlaut kept
    assert str(sp["start_date"].dtype) == "datetime64[s]"
    assert isinstance(sp["institution"].dtype, pd.CategoricalDtype)
    assert res.files["sha256"].str.len().eq(64).all()


def test_comma_separated_and_decimal_comma(tmp_path):
    text = ('person_id,start_date,end_date,insured_earnings\n'
            'p1,2024-01-01,2024-02-01,"5432,50"\n')
    write(tmp_path, text)
    s = Settings.from_dict({"sources": [{"name": "alv", "path": "alv.csv", "institution": "ALV",
                                         "decimal": ","}], "deployment": TOY_IDS}, base_dir=tmp_path)
    sp = ingest(s).spells
    assert sp["insured_earnings"].iloc[0] == pytest.approx(5432.5)


def test_wrong_separator_is_named(tmp_path):
    write(tmp_path, GOOD)
    s = alv_settings(tmp_path, separator=",")
    with pytest.raises(ValidationError, match=r"separator ',' is configured.*looks separated by ';'"):
        ingest(s)


def test_missing_column(tmp_path):
    write(tmp_path, "PERS;INST;ENDE\np1;RAV;01.01.2024\n")
    with pytest.raises(ValidationError) as exc:
        ingest(alv_settings(tmp_path))
    text = exc.value.report.to_text()
    assert "required column missing" in text and "start_date" in text
    assert "configured column not in the file" in text  # BEGINN, FALL, GRUND


def report_of(tmp_path, body: str, **kw):
    write(tmp_path, f"{HEADER}\n{body}")
    with pytest.raises(ValidationError) as exc:
        ingest(alv_settings(tmp_path), **kw)
    return exc.value.report


def test_unknown_institution_code(tmp_path):
    rep = report_of(tmp_path, "p1;XYZ;A;01.01.2024;;;\np2;RAV;B;01.01.2024;;;\n")
    (p,) = rep.errors
    assert p.problem == "unknown institution code" and p.rows == (1,) and p.example == "XYZ"
    assert "extra_institutions" in p.fix


def test_end_before_start(tmp_path):
    rep = report_of(tmp_path, "p1;RAV;A;01.03.2024;01.02.2024;;\n")
    assert [p.problem for p in rep.errors] == ["end before start"]


def test_impossible_date(tmp_path):
    rep = report_of(tmp_path, "p1;RAV;A;31.02.2024;;;\np2;RAV;A;01.02.2024;;;\n")
    (p,) = rep.errors
    assert p.problem == "unparseable date" and p.column == "start_date" and p.example == "31.02.2024"


def test_implausible_date(tmp_path):
    rep = report_of(tmp_path, "p1;RAV;A;01.02.1850;;;\n")
    assert rep.errors[0].problem.startswith("implausible date")


def test_duplicates_are_warned_and_kept_for_merging(tmp_path):
    write(tmp_path, f"{HEADER}\np1;RAV;A;01.01.2024;;;\np1;RAV;A;01.01.2024;;;\n")
    res = ingest(alv_settings(tmp_path))
    assert res.report.ok
    (w,) = res.report.warnings
    assert w.problem == "exact duplicate rows" and w.n_rows == 1 and w.rows == (2,)


def test_spells_without_an_end_date_column_are_warned_as_all_open(tmp_path, caplog):
    """The contract allows no end_date (every registration open), but a mapping that misses the column made
    every spell open without a word: 52 of 180 people multi-registered in one test export."""
    import pandas as pd

    from iizrisk.io import read_canonical

    write(tmp_path, "PERS;INST;FALL;BEGINN\np1;RAV;A;01.01.2024\n")
    res = ingest(alv_settings(tmp_path, columns={"PERS": "person_id", "FALL": "case_id", "BEGINN": "start_date",
                                                 "INST": "institution"}))
    (w,) = res.report.warnings
    assert w.column == "end_date" and w.problem.startswith("column missing: every spell is treated as still open")
    assert "[sources.columns]" in w.fix and w.n_rows == 1 and res.report.ok
    spells = pd.DataFrame({"person_id": ["a"], "institution": ["ALV"],
                           "start_date": pd.to_datetime(["2024-01-01"])})
    spells.to_parquet(tmp_path / "s.parquet")
    with caplog.at_level("WARNING", logger="iizrisk"):
        read_canonical(tmp_path / "s.parquet")
        assert "s.parquet: no end_date column: every spell is treated as still open" in caplog.text
        caplog.clear()
        read_canonical(tmp_path / "s.parquet", columns=["person_id", "institution", "start_date"])
        assert not caplog.text  # a caller that does not read the ends is not warned
        spells.assign(end_date=pd.NaT).to_parquet(tmp_path / "s.parquet")
        read_canonical(tmp_path / "s.parquet")
        assert not caplog.text  # an end_date column of open spells is what the contract means


def test_ahv_numbers_refused_even_in_quarantine_mode(tmp_path):
    # 756.1234.5678.97 has a valid EAN-13 check digit
    write(tmp_path, f"{HEADER}\n7561234567897;RAV;A;01.01.2024;;;\n")
    with pytest.raises(RawIdentifierError) as exc:
        ingest(alv_settings(tmp_path), errors="quarantine")
    msg = str(exc.value) + exc.value.report.to_text()
    assert "'person_id'" in msg and "7561234567897" not in msg


def test_a_file_with_ahv_numbers_is_neither_typed_nor_searched_for_duplicates(tmp_path, monkeypatch):
    """The refusal comes before any other work on the rows: no typing, no thread left working on them."""
    import threading

    import iizrisk.io as io_module

    started = []
    monkeypatch.setattr(io_module, "_convert", lambda *a, **k: started.append("typing"))
    monkeypatch.setattr(io_module, "_duplicates_in_background", lambda df: started.append("duplicates"))
    write(tmp_path, f"{HEADER}\n7561234567897;RAV;A;01.01.2024;;;\n7561234567897;RAV;A;01.01.2024;;;\n")
    with pytest.raises(RawIdentifierError):
        ingest(alv_settings(tmp_path), errors="quarantine")
    assert started == []
    assert not [t.name for t in threading.enumerate() if t.name.startswith("iizrisk-duplicates")]


def test_a_failing_check_does_not_leave_the_duplicate_search_unclaimed(tmp_path, monkeypatch):
    from concurrent.futures import Future

    import iizrisk.io as io_module

    searches: list[Future] = []

    def search(df):
        fut: Future = Future()  # never started: cancel() succeeds
        searches.append(fut)
        return fut

    def broken(*a, **k):
        raise RuntimeError("a check broke")

    monkeypatch.setattr(io_module, "_duplicates_in_background", search)
    monkeypatch.setattr(io_module, "check_text_cells", broken)
    write(tmp_path, f"{HEADER}\np1;RAV;A;01.01.2024;;;\n")
    with pytest.raises(RuntimeError, match="a check broke"):
        ingest(alv_settings(tmp_path))
    assert len(searches) == 1 and searches[0].cancelled()


def test_empty_file(tmp_path):
    write(tmp_path, "")
    with pytest.raises(ValidationError, match="the file is empty"):
        ingest(alv_settings(tmp_path))


def test_not_a_csv_file(tmp_path):
    (tmp_path / "alv.csv").write_bytes(b"PK\x03\x04" + bytes(range(256)))
    with pytest.raises(ValidationError, match="not a CSV file"):
        ingest(alv_settings(tmp_path))


def test_quarantine_sets_bad_rows_aside(tmp_path):
    write(tmp_path, f"{HEADER}\np1;RAV;A;01.01.2024;;;\np2;XYZ;B;31.02.2024;;;\np3;RAV;C;01.03.2024;01.01.2024;;\n")
    res = ingest(alv_settings(tmp_path), errors="quarantine")
    assert res.spells["person_id"].tolist() == ["p1"]
    assert res.quarantine["_row"].tolist() == [2, 3]
    assert "unknown institution code" in res.quarantine["_reason"].iloc[0]
    assert "unparseable date" in res.quarantine["_reason"].iloc[0]
    assert "end before start" in res.quarantine["_reason"].iloc[1]
    assert res.report.rows_quarantined == 2 and not res.report.ok


def test_quarantine_reasons_follow_the_order_of_the_checks(tmp_path):
    """Text checks, then typing, then the table's checks: as when they ran one after another (the
    typing now runs first, beside the search for duplicates, and its problems are added after)."""
    long_case = "C" * 65
    write(tmp_path, f"{HEADER}\np1;XYZ;{long_case};31.02.2024;;;\np2;RAV;B;01.01.2024;;;\n")
    res = ingest(alv_settings(tmp_path), errors="quarantine")
    assert res.quarantine["_reason"].tolist() == [
        "case_id: text longer than 64 characters; start_date: unparseable date; "
        "institution: unknown institution code"]
    assert [p.problem for p in res.report.problems] == [
        "text longer than 64 characters", "unparseable date", "unknown institution code"]
    assert long_case not in res.quarantine.to_csv()  # the refused cell is withheld


def test_folder_and_glob_sources(tmp_path):
    d = tmp_path / "exports"
    d.mkdir()
    write(d, "person_id;start_date\np1;01.01.2024\n", name="a.csv")
    write(d, "person_id;start_date\np2;01.02.2024\n", name="b.csv")
    s = Settings.from_dict({"sources": [{"name": "sh", "path": "exports/*.csv", "institution": "SH"}],
                            "deployment": TOY_IDS}, base_dir=tmp_path)
    res = ingest(s)
    assert sorted(res.spells["person_id"]) == ["p1", "p2"] and len(res.files) == 2
    sp = ingest(d, institution="SH", pseudonym_pattern=None).spells
    assert len(sp) == 2


def test_canonical_parquet_roundtrip(tmp_path):
    df = pd.DataFrame({"person_id": ["a", "b"], "institution": ["ALV", "IV"],
                       "start_date": pd.to_datetime(["2020-01-01", "2021-05-05"]),
                       "end_date": pd.to_datetime(["2020-06-30", None]), "birth_year": [1980, None]})
    write_parquet_atomic(df, tmp_path / "s.parquet")
    back = read_canonical(tmp_path / "s.parquet")
    assert str(back["start_date"].dtype) == "datetime64[s]"
    assert back["end_date"].isna().tolist() == [False, True]
    assert back["birth_year"].dtype == "Int16"
    full = ingest(tmp_path / "s.parquet", pseudonym_pattern=None)
    assert full.report.ok and len(full.spells) == 2
    # the file's SHA-256 (computed beside the read) is the file's
    import hashlib

    assert full.files["sha256"].tolist() == [hashlib.sha256((tmp_path / "s.parquet").read_bytes()).hexdigest()]
    csv = write(tmp_path, GOOD, "utf-8")
    assert ingest(alv_settings(tmp_path)).files["sha256"].tolist() == [hashlib.sha256(csv.read_bytes()).hexdigest()]


def test_a_large_dictionary_is_written_once_as_values(tmp_path, monkeypatch):
    """Pseudonyms as a categorical: written as plain values (a dictionary would repeat in every row group);
    a small categorical (institution codes) keeps its dictionary; the values read back equal."""
    import pyarrow.parquet as pq

    from iizrisk import store

    monkeypatch.setattr(store, "LARGE_DICTIONARY", 3)
    df = pd.DataFrame({"person_id": pd.Categorical(["a", "b", "c", "d", "a", None]),
                       "institution": pd.Categorical(["ALV", "IV", "ALV", "IV", "SH", "SH"])})
    write_parquet_atomic(df, tmp_path / "s.parquet")
    schema = pq.read_schema(tmp_path / "s.parquet")
    assert str(schema.field("person_id").type) in {"string", "large_string"}
    assert str(schema.field("institution").type).startswith("dictionary")
    back = pd.read_parquet(tmp_path / "s.parquet")
    assert back["person_id"].tolist()[:5] == ["a", "b", "c", "d", "a"] and pd.isna(back["person_id"].iloc[5])
    assert back["institution"].astype(str).tolist() == df["institution"].astype(str).tolist()


def test_extension_columns_are_typed_and_checked(tmp_path):
    write(tmp_path, "person_id;start_date;pension_degree;iv_decision\np1;01.01.2024;50;granted\n"
                    "p2;01.01.2024;150;maybe\n", name="iv.csv")
    s = Settings.from_dict({"sources": [{"name": "iv", "path": "iv.csv", "institution": "IV"}],
                            "deployment": TOY_IDS}, base_dir=tmp_path)
    with pytest.raises(ValidationError) as exc:
        ingest(s)
    probs = {(p.column, p.problem) for p in exc.value.report.errors}
    assert ("pension_degree", "value outside [0, 100]") in probs
    assert ("iv_decision", "value outside iv_decision codes") in probs


def test_read_csv_text_detects_encoding(tmp_path):
    p = write(tmp_path, "a;b\nMüller;Zürich\n", "cp1252", name="x.csv")
    df, meta = read_csv_text(p)
    assert meta == {"encoding": "cp1252", "separator": ";"} and df["a"].iloc[0] == "Müller"


def test_interventions(tmp_path):
    df = pd.DataFrame({"person_id": ["a"], "date": ["01.03.2024"], "type": ["joint_assessment"],
                       "institutions": ["ALV+IV"]})
    out = read_interventions(df)
    assert out["date"].iloc[0] == pd.Timestamp("2024-03-01")
    with pytest.raises(ValidationError):
        read_interventions(df.assign(type="coffee"))


def test_validate_cli_exit_codes(tmp_path, capsys):
    # a data file in canonical form (`validate CONFIG` gives the nightly run's verdict, see test_batch)
    pid = "0123456789abcdef" * 4
    body = f"{pid};ALV;A-1;01.02.2023;31.05.2023\n{pid};SH;S-1;2023-03-01;\n"
    head = "person_id;institution;case_id;start_date;end_date\n"
    write(tmp_path, head + body, name="spells.csv")
    assert main(["validate", str(tmp_path / "spells.csv")]) == 0
    assert "Validation: OK" in capsys.readouterr().out
    write(tmp_path, head + body + f"{pid};XYZ;Z;31.02.2024;\n", name="spells.csv")
    assert main(["validate", str(tmp_path / "spells.csv"), "--report", str(tmp_path / "r.csv")]) == 1
    out = capsys.readouterr().out
    assert "unknown institution code" in out and "unparseable date" in out
    assert len(pd.read_csv(tmp_path / "r.csv", sep=";")) == 2
    write(tmp_path, head + "7561234567897;ALV;A;01.01.2024;\n", name="spells.csv")
    assert main(["validate", str(tmp_path / "spells.csv")]) == 1
    assert "AHV" in capsys.readouterr().err
    write(tmp_path, head, name="spells.csv")  # a header without rows: "Validation: OK" with exit 0 before
    assert main(["validate", str(tmp_path / "spells.csv")]) == 1
    assert "holds no rows" in capsys.readouterr().out
    # the report never replaces the file it checks
    write(tmp_path, head + body, name="spells.csv")
    before = (tmp_path / "spells.csv").read_bytes()
    assert main(["validate", str(tmp_path / "spells.csv"), "--report", str(tmp_path / "spells.csv")]) == 2
    assert (tmp_path / "spells.csv").read_bytes() == before and "overwrite the input" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "nothing.toml")]) == 2


def test_bad_row_mask_is_vectorised_per_row(tmp_path):
    rows = [f"p{i};RAV;A;01.01.2024;{'01.01.2023' if i % 3 == 0 else ''};;" for i in range(30)]
    write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n")
    res = ingest(alv_settings(tmp_path), errors="quarantine")
    assert res.quarantine["_row"].tolist() == list(np.arange(1, 31)[::3])


def _ref_parse(text):
    """Reference: the standard library, both accepted formats."""
    import datetime as dt

    if text is None or not text.strip():
        return None
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_day = st.integers(0, 33).map(lambda d: f"{d:02d}") | st.integers(0, 33).map(str)
_month = st.integers(0, 14).map(lambda m: f"{m:02d}") | st.integers(1, 12).map(str)
_year = st.integers(1899, 2101).map(str)
_date_text = st.one_of(
    st.builds(lambda d, m, y: f"{d}.{m}.{y}", _day, _month, _year),
    st.builds(lambda d, m, y: f"{y}-{m}-{d}", _day, _month, _year),
    st.text(alphabet="0123456789.-/ ", max_size=12),
    st.none(),
)


@given(st.lists(_date_text, max_size=30))
@settings(max_examples=300, deadline=None)
def test_date_parsing_matches_stdlib(texts):
    from iizrisk.io import _parse_dates

    got = _parse_dates(pd.Series(texts, dtype="str"), None)
    want = [_ref_parse(t) for t in texts]
    for g, w, t in zip(got, want, texts, strict=True):
        if w is None:
            assert pd.isna(g), t
        else:
            assert g.date() == w, t


# ------------------------------------------------------------------ duplicate rows and pseudonym codes
_rows = st.lists(st.tuples(st.sampled_from(["a", "b", " b", None]), st.sampled_from(["ALV", "SH", None]),
                           st.sampled_from(["c1", "c2", None]), st.integers(0, 2), st.sampled_from([1.5, None])),
                 max_size=40)


def _frame(rows) -> pd.DataFrame:
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return pd.DataFrame({
        "person_id": pd.Series(cols[0], dtype="str"),
        "institution": pd.Categorical(cols[1], categories=["ALV", "SH"]),
        "case_id": pd.Series(cols[2], dtype="str"),
        "start_date": pd.to_datetime(pd.Series(cols[3], dtype="int64"), unit="D").astype("datetime64[s]"),
        "amount": pd.Series(cols[4], dtype="float64"),
    })


@given(_rows, st.booleans())
@settings(max_examples=300, deadline=None)
def test_duplicate_mask_matches_a_set_of_seen_rows(rows, only_text):
    from iizrisk.validate import duplicate_mask

    df = _frame(rows)
    if only_text:
        df = df[["person_id", "case_id"]]
    seen, want = set(), []
    for r in df.astype(object).itertuples(index=False):
        key = tuple(None if pd.isna(v) else v for v in r)
        want.append(key in seen)
        seen.add(key)
    assert duplicate_mask(df).tolist() == want


@given(st.lists(st.sampled_from(["b", "a", " a ", "", "  ", None, "c"]), max_size=30))
@settings(max_examples=200, deadline=None)
def test_encode_pseudonyms_strips_blanks_and_sorts(values):
    from iizrisk.io import encode_pseudonyms

    got = encode_pseudonyms(pd.Series(values, dtype="str"))
    want = [None if v is None or not v.strip() else v.strip() for v in values]
    assert [None if pd.isna(v) else v for v in got.astype(object)] == want
    assert list(got.cat.categories) == sorted({v for v in want if v is not None})
    assert encode_pseudonyms(got) is got  # already encoded: returned as it is


@given(st.lists(st.sampled_from(["b", "a", " a", "a ", "", "ä", "Z", "é9", "ab", "a\x00"]), min_size=2, max_size=40),
       st.booleans())
@settings(max_examples=300, deadline=None)
def test_encode_pseudonyms_of_a_sorted_export_as_the_slow_reference(values, blank):
    from iizrisk.io import _sorted_runs, encode_pseudonyms

    values = sorted(values)  # code point order: the byte order of UTF-8
    col = pd.Series(values + ([None] if blank else []), dtype="str")
    got = encode_pseudonyms(col)
    want = [None if v is None or not v.strip() else v.strip() for v in col.astype(object).where(col.notna(), None)]
    assert [None if pd.isna(v) else v for v in got.astype(object)] == want
    assert list(got.cat.categories) == sorted({v for v in want if v is not None})
    # the runs path is taken exactly when the column is in order and complete
    assert (_sorted_runs(col) is not None) == (not blank)
    assert _sorted_runs(pd.Series(["b", "a"], dtype="str")) is None


@given(st.lists(st.sampled_from(["ab", " a", "a ", "\u00a0", "zz", "  ", "\t9", "é"]), min_size=1, max_size=30),
       st.booleans())
@settings(max_examples=200, deadline=None)
def test_encode_pseudonyms_of_equally_long_values_strips_as_the_reference(values, in_order):
    import pyarrow as pa

    from iizrisk._arrays import plain_ends
    from iizrisk.io import encode_pseudonyms

    values = sorted(values) if in_order else values  # every value two bytes long (the NBSP and é too)
    got = encode_pseudonyms(pd.Series(values, dtype="str"))
    want = [v.strip() or None for v in values]
    assert [None if pd.isna(v) else v for v in got.astype(object)] == want
    assert list(got.cat.categories) == sorted({v for v in want if v is not None})
    # the byte test skips Arrow's trimming only where nothing could be stripped
    assert plain_ends(pa.array(values, type=pa.large_string())) == all(v.isascii() and v == v.strip() for v in values)


_TEXTS = st.lists(st.one_of(st.none(), st.text(st.sampled_from(["a", "Z", "9", "-", " ", "\t", "\n", "\u00a0",
                                                                "\u2009", "\u3000", "é", "~", "\x7f"]),
                                                max_size=4)), max_size=25)


@given(_TEXTS, st.sampled_from(["string", "large_string", "chunked", "sliced"]))
@settings(max_examples=300, deadline=None)
def test_plain_ends_is_true_exactly_when_stripping_changes_nothing(values, layout):
    import pyarrow as pa

    from iizrisk._arrays import plain_ends

    present = [v for v in values if v is not None]
    want = all(v != "" and v.strip() == v and v[0].isascii() and v[-1].isascii() and v[0].isprintable()
               and v[-1].isprintable() for v in present)
    if layout == "chunked":
        arr = pa.chunked_array([pa.array(values[:3], type=pa.large_string()),
                                pa.array(values[3:], type=pa.large_string())])
    elif layout == "sliced":  # offsets not starting at the buffer's start
        arr = pa.array(["  ", *values, " "], type=pa.large_string()).slice(1, len(values))
    else:
        arr = pa.array(values, type=getattr(pa, layout)())
    assert plain_ends(arr) == want
    assert plain_ends(pa.array([], type=pa.int64())) is False  # not text, even when empty


@given(_TEXTS)
@settings(max_examples=200, deadline=None)
def test_blank_to_na_equals_strip_then_blank_to_missing(values):
    from iizrisk.io import _blank_to_na

    col = pd.Series(values, dtype="str")
    got = _blank_to_na(col)
    want = [None if v is None or not v.strip() else v.strip() for v in values]
    assert str(got.dtype) == "str"
    assert [None if pd.isna(v) else v for v in got.astype(object)] == want


@given(_rows)
@settings(max_examples=100, deadline=None)
def test_duplicate_mask_is_exact_when_every_hash_collides(rows):
    import iizrisk.validate as V

    df = _frame(rows)
    want = df.duplicated().tolist()
    mix = V._mix
    V._mix = lambda codes, n: np.zeros(n, dtype=np.uint64)  # every row a candidate
    try:
        assert V.duplicate_mask(df).tolist() == want
    finally:
        V._mix = mix


def test_encode_pseudonyms_of_numbers_and_unsorted_categories():
    from iizrisk.io import encode_pseudonyms

    got = encode_pseudonyms(pd.Series([10, 9, 10]))
    assert got.astype(str).tolist() == ["10", "9", "10"]
    assert list(got.cat.categories) == ["10", "9"]  # text order
    unsorted = pd.Series(pd.Categorical(["b", "a ", "b"], categories=["b", "a "]))
    got = encode_pseudonyms(unsorted)
    assert got.astype(str).tolist() == ["b", "a", "b"] and list(got.cat.categories) == ["a", "b"]


@given(st.lists(st.text(alphabet="ab9é", max_size=4), unique=True, max_size=12), st.data(),
       st.sampled_from(["fast", "absent", "other signature"]))
@settings(max_examples=150, deadline=None)
def test_distinct_categorical_equals_the_checked_public_one(cats, data, pandas_kind):
    """The unchecked fast path gives exactly what ``from_codes`` gives, and another pandas falls back to it."""
    from unittest import mock

    from iizrisk.io import _distinct_categorical

    codes = np.array(data.draw(st.lists(st.integers(-1, len(cats) - 1), max_size=30)), dtype=np.int32)
    index = pd.Index(cats, dtype="str")
    want = pd.Categorical.from_codes(codes, categories=index)
    patch = {"fast": mock.patch.object(pd.CategoricalDtype, "_from_fastpath", pd.CategoricalDtype._from_fastpath),
             "absent": mock.patch.object(pd.CategoricalDtype, "_from_fastpath", None),
             "other signature": mock.patch.object(pd.CategoricalDtype, "_from_fastpath",
                                                  classmethod(lambda cls, values: None))}[pandas_kind]
    with patch:
        got = _distinct_categorical(codes, index)
    assert got.dtype == want.dtype and list(got.categories) == cats and got.categories.dtype == "str"
    np.testing.assert_array_equal(got.codes, want.codes)
    with pytest.raises(ValueError):  # the codes are still checked
        _distinct_categorical(np.array([len(cats)], dtype=np.int32), index)


@given(st.lists(st.one_of(st.none(), st.text(alphabet="ab\x00é9 ", max_size=20),
                          st.text(alphabet="0123456789abcdef", min_size=16, max_size=20)), max_size=60),
       st.integers(0, 3))
@settings(max_examples=400, deadline=None)
def test_string_order_sorts_like_python(values, offset):
    import pyarrow as pa

    from iizrisk._arrays import string_order

    arr = pa.array(["pad"] * offset + values, type=pa.large_string()).slice(offset)
    got = [values[i] for i in string_order(arr)]
    present = [v for v in values if v is not None]
    assert got == sorted(present) + [None] * (len(values) - len(present))


@given(st.lists(st.one_of(st.integers(0, 6), st.integers(2**32 - 3, 2**32 + 2**24 + 1),
                          st.integers(2**64 - 4, 2**64 - 1)), max_size=60),
       st.sampled_from([np.uint64, np.uint32]))
@settings(max_examples=300, deadline=None)
def test_shared_hashes_are_those_that_occur_twice(values, dtype):
    """The sort-based candidates equal pandas' duplicated(keep=False), in order, extreme values included
    (also values that agree in the low 24 bits the sieve looks at)."""
    from iizrisk.validate import _shared

    h = np.array(values, dtype=np.uint64).astype(dtype)  # uint32: the values' low 32 bits
    want = np.flatnonzero(pd.Series(h).duplicated(keep=False).to_numpy())
    np.testing.assert_array_equal(_shared(h), want)


@given(st.lists(st.one_of(st.none(), st.sampled_from(["ALV", "IV", "SH", "XX", ""])), max_size=30),
       st.lists(st.sampled_from(["ALV", "IV", "SH", "ZZ"]), max_size=4), st.booleans())
@settings(max_examples=200, deadline=None)
def test_isin_of_a_categorical_as_pandas(values, allowed, categorical):
    from iizrisk.validate import _isin

    col = pd.Series(values, dtype="category" if categorical else "str")
    assert _isin(col, allowed).tolist() == col.isin(allowed).to_numpy(dtype=bool).tolist()


@st.composite
def _masks(draw):
    n = draw(st.integers(1, 8))
    return n, draw(st.lists(st.tuples(st.booleans(), st.lists(st.booleans(), min_size=n, max_size=n)),
                            max_size=6))


@given(_masks())
@settings(max_examples=200, deadline=None)
def test_absorbed_report_equals_one_built_in_order(masks):
    from iizrisk.validate import ValidationReport

    n, checks = masks
    in_order, first, later = ValidationReport(), ValidationReport(), ValidationReport()
    for r in (in_order, first, later):
        r.track_rows(n)
    for k, (apart, mask) in enumerate(checks):
        args = ("src", f"c{k}", f"problem {k}", np.array(mask))
        in_order.add(*args, fix="f")
        (later if apart else first).add(*args, fix="f")
    # the checks run apart come after the others in both reports
    want = ValidationReport()
    want.track_rows(n)
    for apart in (False, True):
        for k, (a, mask) in enumerate(checks):
            if a == apart:
                want.add("src", f"c{k}", f"problem {k}", np.array(mask), fix="f")
    first.absorb(later)
    assert first.problems == want.problems
    assert first.take_row_reasons().tolist() == want.take_row_reasons().tolist()
    assert later.take_row_reasons() is None  # taken over, not shared


@given(st.lists(st.one_of(st.none(), st.integers(-(2**31) - 2, 2**31 + 1), st.integers(1900, 2010)), max_size=20),
       st.sampled_from(["Int16", "Int32", "Int64", "int64", "UInt32"]))
@settings(max_examples=300, deadline=None)
def test_integer_columns_are_typed_as_their_float_twins_are(values, dtype):
    """An integer export column within Int32 is typed by a cast; the float path is the reference."""
    from iizrisk.io import _convert
    from iizrisk.schema import load_schema
    from iizrisk.validate import ValidationReport

    if dtype == "int64":
        values = [v for v in values if v is not None]
    if dtype in {"Int16", "Int32", "UInt32"}:
        info = np.iinfo(dtype.lower())
        values = [v for v in values if v is None or info.min <= v <= info.max]
    fields = [f for f in load_schema("spells").fields if f.name == "birth_year"]
    results = []
    for col in (pd.Series(values, dtype=dtype), pd.Series(values, dtype="Float64")):
        report = ValidationReport()
        report.track_rows(len(values))
        try:
            typed, bad, unparsed = _convert(pd.DataFrame({"birth_year": col}), fields, source="s", report=report,
                                            rows=np.arange(1, len(values) + 1), date_format=None, decimal=".")
        except (OverflowError, TypeError, ValueError) as exc:  # out of Int32: both paths refuse alike
            results.append(type(exc))
            continue
        results.append((typed["birth_year"].astype(object).where(typed["birth_year"].notna(), None).tolist(),
                        str(typed["birth_year"].dtype), bad.tolist(), [p.problem for p in report.problems],
                        report.take_row_reasons().tolist()))
    assert results[0] == results[1]


def test_frames_read_from_parquet_can_be_changed_in_place(tmp_path):
    """The readers hand out ordinary frames: Arrow's read-only buffers are never the frame's own."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from iizrisk.io import read_canonical, read_canonical_table

    t = pa.table({"person_id": pa.array(["a" * 64, "b" * 64], type=pa.large_string()),
                  "institution": pa.array(["ALV", "SH"]).dictionary_encode(),
                  "start_date": pa.array([pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")]),
                  "birth_year": pa.array([1980, 1990], type=pa.int16()), "score": pa.array([0.1, 0.2])})
    pq.write_table(t, tmp_path / "s.parquet")
    spells = read_canonical(tmp_path / "s.parquet")
    spells.loc[0, "birth_year"] = 1981
    spells.loc[1, "institution"] = "ALV"
    table = read_canonical_table(tmp_path / "s.parquet")
    table.loc[0, "score"] = 1.0
    table.loc[0, "birth_year"] = 1
    assert spells["birth_year"].tolist() == [1981, 1990] and list(spells["institution"]) == ["ALV", "ALV"]
    assert table["score"].tolist() == [1.0, 0.2]


def test_canonical_dtypes_never_share_a_column_with_their_input():
    from iizrisk.io import to_canonical_dtypes

    inp = to_canonical_dtypes(pd.DataFrame({"person_id": ["a", "b"], "institution": ["ALV", "SH"],
                                            "start_date": pd.to_datetime(["2024-01-01", "2024-02-01"]),
                                            "exit_reason": ["employment", "other"]}))
    out = to_canonical_dtypes(inp)  # coded already: the shortcut that returns the codes as they are
    out.loc[0, "exit_reason"] = "other"
    out.loc[0, "institution"] = "SH"
    assert list(inp["exit_reason"]) == ["employment", "other"] and list(inp["institution"]) == ["ALV", "SH"]


_NUMBER_DTYPES = ["int16", "Int16", "UInt8", "Int32", "Int64", "int64", "uint64", "float64", "Float64",
                  "int16[pyarrow]", "uint8[pyarrow]", "int64[pyarrow]", "Sparse[int16]"]


@given(st.sampled_from(_NUMBER_DTYPES), st.data())
@settings(max_examples=300, deadline=None)
def test_duplicate_rows_of_every_number_dtype_as_pandas_finds_them(dtype, data):
    """Numeric columns of any backend, missing values, -0.0 and integers above 2**53 included."""
    from iizrisk.validate import duplicate_mask

    nullable = not (dtype in {"int16", "int64", "uint64"} or dtype.startswith("Sparse"))
    base = pd.Series([], dtype=dtype).dtype
    info = np.iinfo(base.numpy_dtype if hasattr(base, "numpy_dtype") else
                    base.subtype if hasattr(base, "subtype") else base) if "float" not in dtype.lower() else None
    if info is None:
        value = st.sampled_from([0.0, -0.0, 1.5, 2.0**53, 2.0**53 + 2, -7.0])
    else:
        value = st.sampled_from([v for v in (0, 1, -1, 2**53, 2**53 + 1, 2**63 - 1, 255, 300)
                                 if info.min <= v <= info.max])
    values = data.draw(st.lists(st.one_of(value, st.none()) if nullable else value, max_size=25))
    people = data.draw(st.lists(st.sampled_from(["p", "q"]), min_size=len(values), max_size=len(values)))
    df = pd.DataFrame({"person_id": pd.Series(people, dtype="str"), "amount": pd.Series(values, dtype=dtype)})
    assert duplicate_mask(df).tolist() == df.duplicated().tolist()


@given(st.lists(st.booleans(), max_size=6), st.data())
@settings(max_examples=200, deadline=None)
def test_category_rows_as_a_per_row_reference(mask, data):
    from iizrisk._arrays import category_rows

    codes = np.array(data.draw(st.lists(st.integers(-1, len(mask) - 1), max_size=20)), dtype=np.int8)
    got = category_rows(np.array(mask, dtype=bool), codes)
    assert got.dtype == bool and got.tolist() == [c >= 0 and mask[c] for c in codes.tolist()]
    assert category_rows(np.array(mask, dtype=bool), None).tolist() == mask


@given(st.data(), st.integers(0, 4), st.booleans())
@settings(max_examples=300, deadline=None)
def test_filter_strings_equals_arrows_filter(data, width, fixed):
    """The one-copy path for values of one width, and Arrow's way for the rest, give Arrow's filter."""
    import pyarrow as pa

    from iizrisk._arrays import filter_strings

    text = st.text(st.sampled_from(["a", "é", "0"]), min_size=width, max_size=width) if fixed else \
        st.one_of(st.none(), st.text(st.sampled_from(["a", "é", "0"]), max_size=4))
    values = data.draw(st.lists(text, max_size=30))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(values)), max_size=3)))
    kind = data.draw(st.sampled_from([pa.string(), pa.large_string()]))
    bounds = [0, *cuts, len(values)]
    # chunks that are slices: their offsets do not start at their buffer's start
    arr = pa.chunked_array([pa.array(["zz" * width, *values[a:b]], type=kind).slice(1)
                            for a, b in zip(bounds, bounds[1:], strict=False)], type=kind)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))), dtype=bool)
    for whole in (arr, arr.combine_chunks()):  # a chunked array or one array
        got = filter_strings(whole, mask)
        assert isinstance(got, pa.Array) and got.type == pa.large_string()
        got.validate(full=True)
        assert got.to_pylist() == [v for v, m in zip(values, mask, strict=True) if m]


# ------------------------------------------------- the fast path refuses what validate refuses (D23, D24)
def _canonical(tmp_path, **changes):
    df = pd.DataFrame({"person_id": ["a", "b", "c"], "institution": ["ALV", "IV", "SH"],
                       "start_date": pd.to_datetime(["2020-01-01", "2021-05-05", "2022-02-02"]),
                       "end_date": pd.to_datetime(["2020-06-30", None, None]),
                       "recorded_date": pd.to_datetime(["2020-07-03", "2021-05-06", "2022-02-03"])})
    for col, (row, value) in changes.items():
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
        if col.endswith("_date"):
            df[col] = pd.to_datetime(df[col])
    path = tmp_path / "s.parquet"
    write_parquet_atomic(df, path)
    return path


def test_read_canonical_refuses_an_open_end_written_as_9999_12_31(tmp_path):
    """An end 9999-12-31 standing for "still open" closes the row: rows recorded after T would enter T's view."""
    import datetime as dt

    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"person_id": ["a", "b"], "institution": ["ALV", "IV"],
                             "start_date": pa.array([dt.date(2020, 1, 1), dt.date(2021, 5, 5)], pa.date32()),
                             "end_date": pa.array([dt.date(2020, 6, 30), dt.date(9999, 12, 31)], pa.date32())}),
                   path)
    with pytest.raises(ValidationError) as exc:
        read_canonical(path)
    (p,) = exc.value.report.problems
    assert p.source == str(path) and p.column == "end_date" and p.problem.startswith("implausible date")
    assert p.rows == (2,) and p.example == "9999-12-31"
    assert "leave the end empty for an open registration" in str(exc.value)
    assert "leave the end empty for an open registration" in p.fix
    # validate says the same of the same file
    report = ingest(path, errors="quarantine", pseudonym_pattern=None).report
    assert [(q.column, q.problem, q.rows) for q in report.problems] == [(p.column, p.problem, p.rows)]


def test_read_canonical_refuses_implausible_recorded_dates_and_birth_years(tmp_path):
    with pytest.raises(ValidationError, match="recorded_date"):
        read_canonical(_canonical(tmp_path, recorded_date=(1, "2100-01-01")))
    path = _canonical(tmp_path)
    df = pq.read_table(path).to_pandas()
    df["birth_year"] = [1980, -5, None]
    write_parquet_atomic(df, path)
    with pytest.raises(ValidationError, match=r"birth_year.*outside \[1900, 2030\]"):
        read_canonical(path)


def test_read_canonical_refuses_unknown_institution_codes_unless_the_deployment_declares_them(tmp_path):
    """'RAV' for ALV (a local name) would leave every ALV feature empty: refused with the codes and the fix."""
    path = _canonical(tmp_path, institution=(0, "RAV"))
    with pytest.raises(ValidationError) as exc:
        read_canonical(path)
    (p,) = exc.value.report.problems
    assert (p.source, p.column, p.problem, p.rows, p.example) == (str(path), "institution",
                                                                    "unknown institution code", (1,), "RAV")
    assert "'ALV'" in p.fix and "extra_institutions" in str(exc.value)
    # a deployment's own code, declared in [deployment] extra_institutions, is read
    spells = read_canonical(path, extra_institutions=["RAV"])
    assert spells["institution"].astype(str).tolist() == ["RAV", "IV", "SH"]
    # in a folder of files the rows are numbered within their file
    folder = tmp_path / "d"
    folder.mkdir()
    write_parquet_atomic(pq.read_table(_canonical(tmp_path)).to_pandas(), folder / "a.parquet")
    write_parquet_atomic(pq.read_table(_canonical(tmp_path, institution=(2, "XYZ"))).to_pandas(),
                         folder / "b.parquet")
    with pytest.raises(ValidationError) as exc:
        read_canonical(folder)
    (p,) = exc.value.report.problems
    assert p.source == str(folder / "b.parquet") and p.rows == (3,)


# ------------------------------------------------------------------ what a review of mutants found unpinned
@given(st.integers(1, 28), st.integers(1, 12), st.integers(0, 9999),
       st.sampled_from(["{d}.{m}.{y}", "{d:02d}.{m:02d}.{y}", "{y}-{m:02d}-{d:02d}"]))
@settings(max_examples=200, deadline=None)
def test_years_of_fewer_than_four_digits_are_unparseable_as_the_stdlib_says(d, m, y, layout):
    """'01.02.24' is no date of the year 24 (nor of 2024): the export must write the year in full."""
    from iizrisk.io import _parse_dates

    text = layout.format(d=d, m=m, y=y)
    got = _parse_dates(pd.Series([text], dtype="str"), None).iloc[0]
    want = _ref_parse(text)
    assert (pd.isna(got) and want is None) or (want is not None and got.date() == want), text


def test_separators_inside_quoted_header_names_do_not_decide_the_separator(tmp_path):
    from iizrisk.io import read_csv_text

    p = write(tmp_path, '"Name, Vorname, Zusatz, Titel";person_id;start_date\n"Muster, Hans, jun., Dr.";p1;01.02.2024\n')
    df, meta = read_csv_text(p)
    assert meta["separator"] == ";"
    assert list(df.columns) == ["Name, Vorname, Zusatz, Titel", "person_id", "start_date"]
    assert df.iloc[0].tolist() == ["Muster, Hans, jun., Dr.", "p1", "01.02.2024"]


def test_a_windows_1252_export_keeps_its_euro_signs_and_dashes(tmp_path):
    """Bytes 0x80-0x9F are letters in Windows-1252 (what Swiss exports write), control characters in Latin-1."""
    text = f"{HEADER}\np1;RAV;A-1;01.02.2023;31.05.2023;;„Kurs – 500 €“\n"
    write(tmp_path, text, "cp1252")
    res = ingest(alv_settings(tmp_path))
    assert res.spells["BEMERKUNG"].tolist() == ["„Kurs – 500 €“"]
    assert res.files["encoding"].tolist() == ["cp1252"]


@pytest.mark.parametrize(("decimal", "text", "value"), [
    (",", "1.234,50", 1234.5), (",", "12.345.678,5", 12345678.5), (",", "1 234,50", 1234.5),
    (".", "1'234.50", 1234.5), (".", "1 234.50", 1234.5), (",", "5432", 5432.0)])
def test_thousands_separators_of_numbers_with_either_decimal_mark(tmp_path, decimal, text, value):
    write(tmp_path, f'person_id;start_date;insured_earnings\np1;2024-01-01;{text}\n')
    s = Settings.from_dict({"sources": [{"name": "alv", "path": "alv.csv", "institution": "ALV",
                                         "decimal": decimal}], "deployment": TOY_IDS}, base_dir=tmp_path)
    res = ingest(s)
    assert res.report.ok and res.spells["insured_earnings"].iloc[0] == pytest.approx(value)


@pytest.mark.parametrize("year", ["1980.5", "1979.999", "2000.01"])
def test_a_birth_year_with_a_fraction_is_not_a_whole_number(tmp_path, year):
    """Reported once, as not a whole number (it is a number: "not a number, use digits" would mislead)."""
    write(tmp_path, f"person_id;institution;start_date;birth_year\np1;ALV;2024-01-01;1980\n"
                    f'p2;ALV;2024-01-01;"{year}"\n')
    with pytest.raises(ValidationError) as exc:
        ingest(tmp_path / "alv.csv", pseudonym_pattern=None)
    (p,) = exc.value.report.errors
    assert (p.column, p.problem, p.rows, p.example) == ("birth_year", "not a whole number", (2,), year)
    res = ingest(tmp_path / "alv.csv", pseudonym_pattern=None, errors="quarantine")
    assert res.spells["birth_year"].tolist() == [1980] and res.quarantine["_row"].tolist() == [2]
    assert res.quarantine["_reason"].tolist() == ["birth_year: not a whole number"]


@pytest.mark.parametrize("header", ["person_id; person_id", "person_id;person_id ", " start_date;start_date"])
def test_a_column_named_twice_apart_from_white_space_is_refused(tmp_path, header):
    from iizrisk.io import read_csv_text

    p = write(tmp_path, f"{header};institution\na;b;ALV\n")
    with pytest.raises(ValidationError, match="appear more than once in the header") as exc:
        read_csv_text(p)
    (problem,) = exc.value.report.problems
    assert problem.column == header.split(";")[0].strip() and "#1, #2" in problem.problem


@pytest.mark.parametrize("names", [["person_id", "person_id "], [" start_date", "start_date"]])
def test_a_frame_or_parquet_file_naming_a_column_twice_apart_from_white_space_is_refused(tmp_path, names):
    """Frames and Parquet files keep their names as written: 'person_id ' beside 'person_id' is one column twice."""
    df = pd.DataFrame([["a", "b", "ALV", "2024-01-01"]], columns=[*names, "institution", "x"])
    if "start_date" not in [n.strip() for n in names]:
        df = df.rename(columns={"x": "start_date"})
    path = tmp_path / "s.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    for read in (lambda: ingest(df, pseudonym_pattern=None), lambda: ingest(path, pseudonym_pattern=None),
                 lambda: read_canonical(path)):
        with pytest.raises(ValidationError, match="appear more than once in the header") as exc:
            read()
        (problem,) = exc.value.report.problems
        assert problem.column == names[0].strip() and "(columns #1, #2)" in problem.problem


def test_read_canonical_guards_integer_columns_it_does_not_read(tmp_path):
    """An AHV number stored as a number, in a column the caller does not ask for, is still refused."""
    from iizrisk.pseudonym import is_valid_ahv

    number = next(n for n in range(7561234567890, 7561234567900) if is_valid_ahv([str(n)])[0])
    path = _canonical(tmp_path)
    df = pq.read_table(path).to_pandas()
    df["versicherten_nr"] = pd.Series([1, number, 3], dtype="int64")
    write_parquet_atomic(df, path)
    for columns in (None, ["person_id", "institution", "start_date"]):
        with pytest.raises(RawIdentifierError) as exc:
            read_canonical(path, columns=columns)
        (p,) = exc.value.report.problems
        assert p.column == "versicherten_nr" and p.rows == (2,) and str(number) not in str(exc.value)


@given(st.lists(st.integers(-4, 4), min_size=1, max_size=12), st.sampled_from(["start_date", "end_date",
                                                                                  "recorded_date"]),
       st.sampled_from(["2024-06-15", "2023-01-31", "2025-12-31"]))
@settings(max_examples=100, deadline=None)
def test_plausible_dates_end_on_their_bounds_inclusive(offsets, column, today):
    """Dates from 1960-01-01 to a year after today are plausible, both bounds included (a slow reference)."""
    import datetime as dt

    from iizrisk.validate import check_canonical_values

    t = dt.date.fromisoformat(today)
    lo, hi = dt.date(1960, 1, 1), t.replace(year=t.year + 1)
    days = [(lo if i % 2 else hi) + dt.timedelta(days=o) for i, o in enumerate(offsets)]
    df = pd.DataFrame({column: pd.to_datetime(days).astype("datetime64[s]")})
    report, bad = check_canonical_values(df, source="s", today=pd.Timestamp(today))
    want = [not lo <= d <= hi for d in days]
    assert bad.tolist() == want
    assert [p.rows for p in report.problems] == ([tuple(i + 1 for i, w in enumerate(want) if w)[:5]]
                                                 if any(want) else [])


@given(st.lists(st.one_of(st.none(), st.integers(1895, 1905), st.integers(2025, 2035)), min_size=1, max_size=12))
@settings(max_examples=100, deadline=None)
def test_birth_years_are_plausible_from_1900_to_2030_inclusive(years):
    from iizrisk.validate import check_canonical_values

    df = pd.DataFrame({"birth_year": pd.Series(years, dtype="Int16")})
    _, bad = check_canonical_values(df, source="s")
    assert bad.tolist() == [y is not None and not 1900 <= y <= 2030 for y in years]


@given(st.lists(st.tuples(st.sampled_from(["p", "q"]), st.sampled_from([0.0, -0.0, 2.5, None])), max_size=12),
       st.sampled_from(["float64", "Float64"]))
@settings(max_examples=100, deadline=None)
def test_duplicate_rows_take_minus_zero_for_zero_as_pandas_does(rows, dtype):
    from iizrisk.validate import duplicate_mask

    df = pd.DataFrame({"person_id": pd.Series([r[0] for r in rows], dtype="str"),
                       "amount": pd.Series([r[1] for r in rows], dtype=dtype)})
    assert duplicate_mask(df).tolist() == df.duplicated().tolist()


def test_quarantine_reasons_name_errors_never_warnings(tmp_path):
    """Two equal bad rows: the second is an exact duplicate (a warning) and the file has no end_date (a
    warning); a quarantined row's reason names only what refused it."""
    write(tmp_path, "person_id;institution;start_date\np1;XYZ;2024-01-01\np1;XYZ;2024-01-01\np2;ALV;2024-01-01\n")
    res = ingest(tmp_path / "alv.csv", pseudonym_pattern=None, errors="quarantine")
    assert {p.problem for p in res.report.warnings} == {
        "exact duplicate rows", "column missing: every spell is treated as still open at the export"}
    assert res.quarantine["_row"].tolist() == [1, 2]
    assert res.quarantine["_reason"].tolist() == ["institution: unknown institution code"] * 2
