"""Ingestion guards (issue 15 items 1 and 2a): AHV numbers in any spelling and place, pseudonym
shape, institution codes per source, and small defects of the readers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from iizrisk.config import Settings
from iizrisk.errors import ConfigError, RawIdentifierError, ValidationError
from iizrisk.io import (
    ingest,
    read_canonical,
    read_csv_text,
    read_interventions,
)
from iizrisk.store import write_parquet_atomic

AHV = "7561234567897"  # valid EAN-13 check digit
DOTTED = "756.1234.5678.97"
P1, P2, P3 = ("0123456789abcdef" * 4, "fedcba9876543210" * 4, "00112233445566778899aabbccddeeff" * 2)
HEADER = "PERS_PSEUDO;FALL_NR;BEGINN;ENDE"


def settings(tmp_path: Path, path: str = "alv.csv", **source) -> Settings:
    src = {"name": "alv", "path": path, "institution": "ALV",
           "columns": {"PERS_PSEUDO": "person_id", "FALL_NR": "case_id", "BEGINN": "start_date",
                       "ENDE": "end_date"}, **source}
    return Settings.from_dict({"sources": [src]}, base_dir=tmp_path)


def write(tmp_path: Path, text: str, name: str = "alv.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def shown(exc: Exception) -> str:
    """Everything an error shows: message, report text, HTML and CSV."""
    rep = getattr(exc, "report", None)
    parts = [str(exc)]
    if rep is not None:
        parts += [rep.to_text(), rep._repr_html_(), rep.to_frame().to_csv()]
    return "\n".join(parts)


# --------------------------------------------------------------------------- AHV numbers
@pytest.mark.parametrize("value", [DOTTED, "756-1234-5678-97", "756 1234 5678 97", "756\u202f1234\u202f5678\u202f97",
                                   f"RAV{AHV}", f"Nr.{DOTTED}", f"AHV:{DOTTED}", "7.561234567897E+12",
                                   "7,561234567897E+12", "７５６．１２３４．５６７８．９７"])
def test_every_spelling_in_a_free_text_column_is_refused(tmp_path, value):
    write(tmp_path, f"{HEADER};NOTIZ\n{P1};A-1;01.02.2024;;Rückruf\n{P2};A-2;01.02.2024;;{value}\n")
    with pytest.raises(RawIdentifierError) as exc:
        ingest(settings(tmp_path), errors="quarantine")
    text = shown(exc.value)
    assert "'NOTIZ'" in text and value not in text and AHV not in text


@pytest.mark.parametrize("name", [f"alv_{AHV}.csv", f"alv {DOTTED}.csv", f"AHV_{AHV}.csv"])
def test_ahv_number_in_a_file_name_is_refused_without_echo(tmp_path, name, caplog):
    d = tmp_path / "exports"
    d.mkdir()
    write(d, f"{HEADER}\n{P1};A-1;01.02.2024;\n", name="a.csv")
    write(d, f"{HEADER}\n{P2};A-2;01.02.2024;\n", name=name)
    for path in ("exports", "exports/*.csv"):
        with pytest.raises(RawIdentifierError) as exc:
            ingest(settings(tmp_path, path=path))
        text = shown(exc.value) + caplog.text
        assert "source 'alv'" in text and "file #" in text and "name withheld" in text
        assert AHV not in text and DOTTED not in text and name not in text


def test_ahv_number_in_a_folder_name_is_refused(tmp_path):
    d = tmp_path / f"exports_{AHV}"
    d.mkdir()
    write(d, f"{HEADER}\n{P1};A-1;01.02.2024;\n", name="a.csv")
    with pytest.raises(ConfigError, match=r"\[\[sources\]\] #1 path") as cfg_exc:  # refused as the settings load
        ingest(settings(tmp_path, path=f"exports_{AHV}/a.csv"))
    assert AHV not in shown(cfg_exc.value)
    write_parquet_atomic(pd.DataFrame({"person_id": [P1]}), d / "s.parquet")
    for read in (read_canonical, read_interventions):
        with pytest.raises(RawIdentifierError) as exc:
            read(d / "s.parquet")
        assert AHV not in shown(exc.value)


@pytest.mark.parametrize("header", [DOTTED, f"AHV_{AHV}", f"RAV{AHV}"])
def test_ahv_number_in_a_column_header_is_refused_without_echo(tmp_path, header):
    write(tmp_path, f"{HEADER};{header}\n{P1};A-1;01.02.2024;;x\n")
    with pytest.raises(RawIdentifierError) as exc:
        ingest(settings(tmp_path))
    text = shown(exc.value)
    assert "#5" in text and AHV not in text and DOTTED not in text
    table = pa.table({"person_id": [P1], "institution": ["ALV"], "start_date": ["2024-01-01"], header: ["x"]})
    pq.write_table(table, tmp_path / "s.parquet")
    for read in (lambda p: ingest(p), read_canonical):
        with pytest.raises(RawIdentifierError) as exc:
            read(tmp_path / "s.parquet")
        assert "#4" in shown(exc.value) and AHV not in shown(exc.value) and DOTTED not in shown(exc.value)
    with pytest.raises(RawIdentifierError):
        ingest(pd.DataFrame({"person_id": [P1], header: ["x"]}))


def test_exotic_digits_do_not_crash_and_are_refused(tmp_path):
    arabic = AHV.translate({ord(str(i)): 0x0660 + i for i in range(10)})
    write(tmp_path, f"{HEADER};NOTIZ\n{P1};A-1;01.02.2024;;{arabic}\n{P2};A-2;01.02.2024;;٣ Termine\n")
    with pytest.raises(RawIdentifierError) as exc:
        ingest(settings(tmp_path))
    assert arabic not in shown(exc.value) and "'NOTIZ'" in shown(exc.value)


# --------------------------------------------------------------------------- pseudonyms
@pytest.mark.parametrize("bad", ["p12", "Muster Hans", "1980-02-03", P1.upper(), P1[:-1] + "G", P1[:30] + " " + P1[31:],
                                 P1 + "0", "Meier-Müller Anna"])
def test_person_id_must_be_a_pseudonym(tmp_path, bad):
    write(tmp_path, f"{HEADER}\n{P1};A-1;01.02.2024;\n{bad};A-2;01.02.2024;\n{P2};A-3;01.03.2024;\n")
    with pytest.raises(ValidationError) as exc:
        ingest(settings(tmp_path))
    (p,) = exc.value.report.errors
    assert p.column == "person_id" and p.rows == (2,) and p.example == ""
    assert "iizrisk pseudonymise" in p.fix and "pseudonym_pattern" in p.fix
    assert ("upper or mixed case" in p.problem) == (bad == P1.upper())
    assert bad not in shown(exc.value)
    # quarantine: the row is set aside and the file shows no trace of the value
    res = ingest(settings(tmp_path), errors="quarantine")
    assert res.spells["person_id"].astype(str).tolist() == [P1, P2]
    assert res.quarantine["_row"].tolist() == [2]
    assert bad not in res.quarantine.to_csv() and "withheld" in res.quarantine["person_id"].iloc[0]


def test_pseudonym_pattern_of_the_deployment_and_the_opt_out(tmp_path):
    write(tmp_path, f"{HEADER}\np1;A-1;01.02.2024;\n")
    s = settings(tmp_path)
    with pytest.raises(ValidationError, match="input refused"):
        ingest(s)
    s.deployment.pseudonym_pattern = "p[0-9]+"
    assert len(ingest(s).spells) == 1
    s.save(tmp_path / "iizrisk.toml")
    assert len(ingest(tmp_path / "iizrisk.toml").spells) == 1
    with pytest.raises(ConfigError, match="pseudonym_pattern"):
        ingest(s, pseudonym_pattern=None)  # a deployment keeps its own setting
    df = pd.DataFrame({"person_id": ["p1"], "institution": ["SH"], "start_date": ["2024-01-01"]})
    with pytest.raises(ValidationError):
        ingest(df)  # without settings: the default pattern
    assert len(ingest(df, pseudonym_pattern=None).spells) == 1
    assert len(ingest(df, pseudonym_pattern=r"p\d+").spells) == 1
    assert len(ingest(df, settings=s).spells) == 1
    with pytest.raises(ConfigError):
        ingest(df, pseudonym_pattern="p[")


def test_white_space_around_a_pseudonym_is_stripped(tmp_path):
    write(tmp_path, f"{HEADER}\n  {P1} ;A-1;01.02.2024;\n")
    assert ingest(settings(tmp_path)).spells["person_id"].astype(str).tolist() == [P1]


# --------------------------------------------------------------------------- institutions
def test_source_emits_only_its_institution_codes(tmp_path):
    text = f"{HEADER};STELLE\n{P1};A-1;01.02.2024;;RAV\n{P2};A-2;01.02.2024;;SH\n{P3};A-3;01.02.2024;;XYZ\n"
    write(tmp_path, text)
    cols = {"PERS_PSEUDO": "person_id", "FALL_NR": "case_id", "BEGINN": "start_date", "ENDE": "end_date",
            "STELLE": "institution"}
    values = {"institution": {"RAV": "ALV"}}
    for src in ({"institution": "ALV"}, {"institution": None, "institutions": ["ALV"]}):
        s = settings(tmp_path, columns=cols, values=values, **src)
        with pytest.raises(ValidationError) as exc:
            ingest(s)
        probs = {(p.column, p.problem, p.rows) for p in exc.value.report.errors}
        assert probs == {("institution", "institution code not allowed for this source", (2,)),
                         ("institution", "unknown institution code", (3,))}
        assert "['ALV']" in next(p.fix for p in exc.value.report.errors if "allowed" in p.problem)
    s = settings(tmp_path, columns=cols, values=values, institution=None, institutions=["ALV", "SH"])
    with pytest.raises(ValidationError) as exc:
        ingest(s)
    assert [p.problem for p in exc.value.report.errors] == ["unknown institution code"]
    # a mapped institution column without the list of codes: the configuration is incomplete
    with pytest.raises(ConfigError, match=r"STELLE.*institutions = "):
        ingest(settings(tmp_path, columns=cols, values=values, institution=None))
    # a source in canonical form (institution column not mapped) may hold every known code
    df = pd.DataFrame({"person_id": [P1, P2], "institution": ["ALV", "SH"], "start_date": ["2024-01-01"] * 2})
    assert len(ingest(df).spells) == 2


# --------------------------------------------------------------------------- small defects
def test_repeated_header_column_is_refused(tmp_path):
    write(tmp_path, f"{HEADER};PERS_PSEUDO\n{P1};A-1;01.02.2024;;{P2}\n")
    with pytest.raises(ValidationError) as exc:
        ingest(settings(tmp_path))
    (p,) = exc.value.report.problems
    assert p.column == "PERS_PSEUDO" and "2 times" in p.problem and "#1, #5" in p.problem
    assert "PERS_PSEUDO.1" in p.fix and P2 not in shown(exc.value)
    write(tmp_path, f"{HEADER}; PERS_PSEUDO \n{P1};A-1;01.02.2024;;{P2}\n")  # equal once stripped
    with pytest.raises(ValidationError, match="PERS_PSEUDO"):
        read_csv_text(tmp_path / "alv.csv")
    table = pa.Table.from_arrays([pa.array([P1]), pa.array([P2]), pa.array(["2024-01-01"])],
                                 names=["person_id", "person_id", "start_date"])
    pq.write_table(table, tmp_path / "s.parquet")
    for read in (lambda p: ingest(p, institution="ALV"), read_canonical):
        with pytest.raises(ValidationError, match="more than once"):
            read(tmp_path / "s.parquet")


def test_two_export_columns_mapped_onto_one_are_refused(tmp_path):
    write(tmp_path, f"{HEADER};PID\n{P1};A-1;01.02.2024;;{P2}\n")
    cols = {"PERS_PSEUDO": "person_id", "PID": "person_id", "FALL_NR": "case_id", "BEGINN": "start_date"}
    with pytest.raises(ValidationError) as exc:
        ingest(settings(tmp_path, columns=cols), errors="quarantine")
    (p,) = [p for p in exc.value.report.problems if "map onto" in p.problem]
    assert p.column == "person_id" and "PID" in p.fix and "PERS_PSEUDO" in p.fix


@pytest.mark.parametrize("encoding,configured", [("utf-16", "utf-16"), ("utf-16", None), ("utf-16-le", "utf-16-le"),
                                                 ("utf-16-be", "utf-16"), ("utf-32", None)])
def test_utf16_exports_are_read(tmp_path, encoding, configured):
    text = f"{HEADER};ORT\n{P1};A-1;01.02.2024;;Zürich\n{P2};A-2;01.03.2024;;Genève\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    (tmp_path / "alv.csv").write_bytes(data)
    res = ingest(settings(tmp_path, encoding=configured))
    assert res.spells["ORT"].tolist() == ["Zürich", "Genève"]


def test_utf16_without_setting_or_mark_and_a_conflicting_setting(tmp_path):
    write(tmp_path, f"{HEADER}\n{P1};A-1;01.02.2024;\n", encoding="utf-16-le")  # no byte-order mark
    with pytest.raises(ValidationError, match="encoding = 'utf-16'"):
        ingest(settings(tmp_path))
    write(tmp_path, f"{HEADER}\n{P1};A-1;01.02.2024;\n", encoding="utf-16")  # with a mark
    with pytest.raises(ValidationError, match="byte-order mark but encoding = 'cp1252'"):
        ingest(settings(tmp_path, encoding="cp1252"))


def test_nul_byte_anywhere_is_refused(tmp_path):
    rows = [f"{P1};A-{i};01.02.2024;" for i in range(400)]  # more than 8 KiB before the NUL byte
    rows.append(f"{P2};A-\x00x;01.02.2024;")
    text = HEADER + "\n" + "\n".join(rows) + "\n"
    assert text.index("\x00") > 8192
    write(tmp_path, text)
    with pytest.raises(ValidationError) as exc:
        ingest(settings(tmp_path))
    (p,) = exc.value.report.errors
    assert (p.column, p.problem, p.rows, p.example) == ("case_id", "NUL byte in the text", (401,), "")
    res = ingest(settings(tmp_path), errors="quarantine")
    assert len(res.spells) == 400 and res.quarantine["_row"].tolist() == [401]
    assert "\x00" not in res.quarantine.to_csv()
    # also in a DataFrame or Parquet column that is not in the schema
    df = pd.DataFrame({"person_id": [P1, P2], "institution": ["SH", "SH"], "start_date": ["2024-01-01"] * 2,
                       "notiz": ["ok", "a\x00b"]})
    with pytest.raises(ValidationError) as exc:
        ingest(df)
    assert [(p.column, p.rows) for p in exc.value.report.errors] == [("notiz", (2,))]


def test_overlong_text_is_refused_and_never_copied(tmp_path):
    huge = "X" * 1_000_000
    write(tmp_path, f"{HEADER};NOTIZ\n{P1};{huge};01.02.2024;;ok\n{P2};A-{'9' * 64};01.02.2024;;ok\n"
                    f"{P3};A-3;01.02.2024;;{'y' * 5000}\n{P1};{'Z' * 64};01.03.2024;;{'y' * 4096}\n")
    with pytest.raises(ValidationError) as exc:
        ingest(settings(tmp_path))
    probs = {(p.column, p.problem, p.rows) for p in exc.value.report.errors}
    assert probs == {("case_id", "text longer than 64 characters", (1, 2)),
                     ("NOTIZ", "text longer than 4,096 characters", (3,))}
    assert len(shown(exc.value)) < 20_000
    res = ingest(settings(tmp_path), errors="quarantine")
    assert res.spells["case_id"].tolist() == ["Z" * 64]
    assert res.quarantine["_row"].tolist() == [1, 2, 3] and res.quarantine.to_csv().count("X") < 100


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_non_regular_export_paths_are_refused_without_blocking(tmp_path, kind):
    if kind == "fifo":
        os.mkfifo(tmp_path / "alv.csv")
        path = "alv.csv"
    else:
        path = "/dev/zero"
    script = textwrap.dedent(f"""
        from iizrisk.config import Settings
        from iizrisk.errors import ValidationError
        from iizrisk.io import ingest, read_csv_text
        s = Settings.from_dict({{"sources": [{{"name": "alv", "path": {path!r}, "institution": "ALV",
                                              "format": "csv"}}]}}, base_dir={str(tmp_path)!r})
        for call in (lambda: ingest(s), lambda: read_csv_text(s.resolve({path!r}))):
            try:
                call()
            except ValidationError as exc:
                print("refused:", exc)
            else:
                print("read")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("refused:") for line in lines), proc.stdout
    assert "not a regular file" in lines[0] and "alv" in lines[0] and Path(path).name in lines[0]
    assert {"fifo": "a named pipe", "device": "a device"}[kind] in lines[0]


def test_a_folder_is_no_csv_file(tmp_path):
    (tmp_path / "x.csv").mkdir()
    with pytest.raises(ValidationError, match="is a folder, not a regular file"):
        read_csv_text(tmp_path / "x.csv")


def test_interventions_of_the_deployment_come_with_the_ingestion(tmp_path):
    write(tmp_path, f"{HEADER}\n{P1};A-1;01.02.2024;\n")
    s = settings(tmp_path)
    assert ingest(s).interventions is None
    s.deployment.interventions = "interventions.csv"
    write(tmp_path, f"person_id;date;type\n{P1};01.03.2024;joint_assessment\n", name="interventions.csv")
    iv = ingest(s).interventions
    assert iv["person_id"].tolist() == [P1] and iv["date"].iloc[0] == pd.Timestamp("2024-03-01")
    assert ingest(pd.DataFrame({"person_id": [P1], "institution": ["SH"], "start_date": ["2024-01-01"]}),
                  settings=s).interventions is None  # only a deployment configuration reads them
    write(tmp_path, f"person_id;date;type\n{DOTTED};01.03.2024;joint_assessment\n", name="interventions.csv")
    with pytest.raises(RawIdentifierError) as exc:
        ingest(s)
    assert DOTTED not in shown(exc.value)
    write(tmp_path, "person_id;date;type\nMuster Hans;01.03.2024;joint_assessment\n", name="interventions.csv")
    with pytest.raises(ValidationError) as exc:
        ingest(s)
    assert [p.problem for p in exc.value.report.errors] == ["person_id is not a pseudonym"]
    assert "Muster" not in shown(exc.value)
    assert len(read_interventions(tmp_path / "interventions.csv")) == 1  # no pattern unless asked


def test_readers_and_writers_close_every_file(tmp_path):
    write(tmp_path, f"{HEADER}\n{P1};A-1;01.02.2024;\n")
    settings(tmp_path).save(tmp_path / "iizrisk.toml")
    script = textwrap.dedent(f"""
        import gc
        import pandas as pd
        from pathlib import Path
        from iizrisk.io import ingest, read_canonical, read_csv_text, read_interventions
        from iizrisk.store import write_parquet_atomic
        d = Path({str(tmp_path)!r})
        sp = ingest(d / "iizrisk.toml").spells
        write_parquet_atomic(sp, d / "out" / "s.parquet")
        read_canonical(d / "out" / "s.parquet")
        ingest(d / "out" / "s.parquet")
        read_csv_text(d / "alv.csv")
        write_parquet_atomic(pd.DataFrame({{"person_id": [{P1!r}], "date": ["2024-01-01"],
                                            "type": ["other"]}}), d / "iv.parquet")
        read_interventions(d / "iv.parquet")
        gc.collect()
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    assert "ResourceWarning" not in proc.stderr and "unclosed" not in proc.stderr, proc.stderr


def test_quarantine_withholds_whatever_looks_like_an_ahv_number():
    from iizrisk.io import _withheld

    q = pd.DataFrame({"case_id": ["A-1", f"RAV{AHV}", "B"], "person_id": [P1, P2, "Muster"]}).astype("str")
    out = _withheld(q, {"person_id": np.array([False, True, True, True])}, np.array([True, False, True, True]))
    assert out["case_id"].tolist()[0] == "A-1" and AHV not in out.to_csv()
    assert out["person_id"].tolist() == [P1, "<withheld: refused value>", "<withheld: refused value>"]


@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "ok", "a\x00b", "\x00", "é" * 70, "x" * 65])), max_size=20))
@hypothesis_settings(max_examples=100, deadline=None)
def test_text_cells_of_a_categorical_equal_those_of_its_values(values):
    """A categorical column is checked on its categories: the same rows and problems as the plain column."""
    from iizrisk.validate import ValidationReport, check_text_cells

    plain = pd.DataFrame({"case_id": pd.Series(values, dtype="str")})
    found = []
    for frame in (plain, plain.astype({"case_id": "category"})):
        report = ValidationReport()
        bad, _ = check_text_cells(frame, report, "src")
        found.append((bad.tolist(), sorted((p.problem, p.rows) for p in report.problems)))
    assert found[0] == found[1]
    assert found[0][0] == [v is not None and ("\x00" in v or len(v) > 64) for v in values]


@given(st.lists(st.one_of(st.none(), st.text(alphabet="0123456789abcdefABCgé\x00 ", min_size=0, max_size=6)),
                max_size=40), st.integers(1, 6), st.integers(0, 3))
@hypothesis_settings(max_examples=300, deadline=None)
def test_hex_pseudonyms_are_checked_on_the_bytes_as_re2_checks_them(values, n, offset):
    import pyarrow.compute as pc

    from iizrisk.validate import _fullmatch, _hex_fullmatch

    arr = pa.chunked_array([pa.array(values, type=pa.large_string()).slice(min(offset, len(values)))],
                           type=pa.large_string())
    pattern = f"[0-9a-f]{{{n}}}"
    re2 = np.asarray(pc.fill_null(pc.match_substring_regex(arr, f"^(?:{pattern})$"), False)
                     .to_numpy(zero_copy_only=False), dtype=bool)
    assert _fullmatch(arr, pattern).tolist() == re2.tolist()
    fast = _hex_fullmatch(arr, n)
    present = arr.drop_null().to_pylist()
    # the byte path decides exactly when every value is present and n bytes long
    assert (fast is not None) == (arr.null_count == 0 and all(len(v.encode()) == n for v in present))
    if fast is not None:
        assert fast.tolist() == re2.tolist()


@given(st.data(), st.integers(1, 8))
@hypothesis_settings(max_examples=200, deadline=None)
def test_hex_pseudonyms_of_the_right_length_take_the_byte_path(data, n):
    import pyarrow.compute as pc

    from iizrisk.validate import _hex_fullmatch

    values = data.draw(st.lists(st.text(alphabet="0123456789abcdefAFgz/:`", min_size=n, max_size=n), max_size=30))
    arr = pa.chunked_array([pa.array(values, type=pa.large_string())], type=pa.large_string())
    fast = _hex_fullmatch(arr, n)
    assert fast is not None
    re2 = pc.match_substring_regex(arr, f"^(?:[0-9a-f]{{{n}}})$").to_numpy(zero_copy_only=False)
    assert fast.tolist() == np.asarray(re2, dtype=bool).tolist()


@given(st.integers(0, 4).map(lambda k: 8 * k) | st.integers(1, 20), st.data())
@hypothesis_settings(max_examples=200, deadline=None)
def test_hex_rows_eight_bytes_at_a_time_equal_a_byte_by_byte_reference(width, data):
    from iizrisk.validate import _hex_rows

    near = [0x00, 0x2F, 0x30, 0x39, 0x3A, 0x40, 0x60, 0x61, 0x66, 0x67, 0x7F, 0x80, 0xAF, 0xB0, 0xE1, 0xFF]
    rows = data.draw(st.lists(st.lists(st.sampled_from(near) | st.integers(0, 255), min_size=width,
                                       max_size=width), max_size=12))
    matrix = np.array(rows, dtype=np.uint8).reshape(len(rows), width)
    expected = [all(b in b"0123456789abcdef" for b in row) for row in rows]
    assert _hex_rows(matrix).tolist() == expected


def test_hex_rows_reject_every_other_byte_in_every_lane():
    from iizrisk.validate import _hex_rows

    for width in (8, 16, 24):
        for pos in range(width):
            m = np.full((256, width), ord("7"), dtype=np.uint8)
            m[:, pos] = np.arange(256)
            assert _hex_rows(m).tolist() == [b in b"0123456789abcdef" for b in range(256)]


# ---------------------------------------------------------------- Parquet column types of an export
def _export(tmp_path: Path, **columns) -> Path:
    n = len(next(iter(columns.values())))
    base = {"person_id": pa.array([P1, P2, P3][:n] + [P1] * max(0, n - 3)),
            "institution": pa.array(["ALV"] * n), "case_id": pa.array([f"c{i}" for i in range(n)]),
            "start_date": pa.array([pd.Timestamp("2024-01-01").date()] * n)}
    p = tmp_path / "export.parquet"
    pq.write_table(pa.table({**base, **columns}), p)
    return p


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamps_with_parts_of_a_second_are_floored_not_refused(tmp_path, unit):
    """A database writes its entry times with milliseconds: the day counts, the time of day is floored."""
    per = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    second = 1_704_067_200  # 2024-01-01 00:00:00
    ticks = [second * per + per // 2, None, -per // 2 if per > 1 else -1, (second + 86_399) * per + per - 1]
    p = _export(tmp_path, start_date=pa.array(ticks, pa.timestamp(unit)))
    # the reference: floor to the second in Python integers
    want = [pd.Timestamp(t // per, unit="s") if t is not None else pd.NaT for t in ticks]
    read = read_canonical(p)["start_date"]
    assert str(read.dtype) == "datetime64[s]" and read.tolist() == want
    got = ingest(p, pseudonym_pattern=None, errors="quarantine")  # the missing start date: quarantined
    assert got.spells["start_date"].tolist() == [want[0], want[2], want[3]] and len(got.quarantine) == 1


def test_timestamps_with_a_time_zone_keep_their_local_day(tmp_path):
    """00:30 in Zurich is the day it was recorded on, not the day before in UTC."""
    winter, summer = (pd.Timestamp(t, tz="Europe/Zurich") for t in ("2024-03-01 00:30", "2024-09-17 00:30"))
    p = _export(tmp_path, start_date=pa.array([winter, summer], pa.timestamp("ms", tz="Europe/Zurich")))
    got = ingest(p, pseudonym_pattern=None)
    assert got.spells["start_date"].tolist() == [pd.Timestamp("2024-03-01 00:30"), pd.Timestamp("2024-09-17 00:30")]


@pytest.mark.parametrize("column, values, says", [
    ("person_id", pa.array([[1], [2]]), "nested values"),
    ("case_id", pa.array([{"a": 1}, {"a": 2}]), "nested values"),
    ("canton", pa.array([[("a", 1)], [("b", 2)]], pa.map_(pa.string(), pa.int64())), "nested values"),
    ("person_id", pa.array([b"\xff\xfe", b"\x00\xc3"]), "not UTF-8 text"),
    ("case_id", pa.array([b"\xff", b"\xfe"], pa.binary(1)).dictionary_encode(), "not UTF-8 text"),
])
def test_parquet_columns_no_contract_column_takes_are_refused_by_name(tmp_path, column, values, says):
    p = _export(tmp_path, **{column: values})
    for read in (lambda: ingest(p, pseudonym_pattern=None), lambda: read_canonical(p)):
        with pytest.raises(ValidationError) as exc:
            read()
        assert str(p) in str(exc.value) or p.name in str(exc.value)
        assert repr(column) in str(exc.value) and says in str(exc.value)
    cli = subprocess.run([sys.executable, "-m", "iizrisk", "validate", str(p)], capture_output=True, text=True)
    assert cli.returncode == 1, cli.stderr
    assert says in cli.stderr and "internal error" not in cli.stderr


def test_binary_text_columns_are_decoded(tmp_path):
    p = _export(tmp_path, case_id=pa.array([b"c1", b"c2"], pa.large_binary()),
                person_id=pa.array([P1.encode(), P2.encode()]).dictionary_encode())
    got = ingest(p).spells
    assert got["case_id"].tolist() == ["c1", "c2"] and got["person_id"].astype(str).tolist() == [P1, P2]


def test_dropped_columns_of_a_parquet_export_are_never_read(tmp_path):
    """A column the source drops may hold anything (nested notes, bytes): it is not read at all."""
    p = _export(tmp_path, notes=pa.array([[1], [2]]), blob=pa.array([b"\xff", b"\xfe"]))
    s = settings(tmp_path, path=p.name, columns={}, drop_columns=["notes", "blob"])
    got = ingest(s)
    assert len(got.spells) == 2 and "notes" not in got.spells.columns


@given(st.lists(st.one_of(st.none(), st.text(alphabet="aé€😀 \u00a0", max_size=12)), max_size=30), st.integers(0, 14))
@hypothesis_settings(max_examples=300, deadline=None)
def test_values_longer_than_a_limit_are_counted_in_characters(values, limit):
    """Bytes first, characters only where the bytes exceed the limit: the same as counting characters."""
    from iizrisk.validate import _longer_than

    arr = pa.chunked_array([pa.array(values, type=pa.large_string())], type=pa.large_string())
    assert _longer_than(arr, limit).tolist() == [v is not None and len(v) > limit for v in values]


@given(st.lists(st.one_of(st.none(), st.text(alphabet="ab \t\u00a0\u2003é", max_size=5)), max_size=30),
       st.booleans())
@hypothesis_settings(max_examples=300, deadline=None)
def test_blank_text_is_what_stripping_leaves_empty(values, categorical):
    from iizrisk.validate import _blank

    col = pd.Series(values, dtype="str")
    if categorical:
        col = col.astype("category")
    got = _blank(col).tolist()
    assert got == [v is not None and v.strip() == "" for v in values]  # a missing value is the caller's


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e400", "NaN"])
def test_a_number_that_is_not_finite_is_not_a_number(value):
    """``inf`` in an integer column crashed ingestion (exit 5); it is 'not a number' like any other text."""
    df = pd.DataFrame({"person_id": [P1, P2], "institution": ["ALV", "SH"], "case_id": ["1", "2"],
                       "start_date": ["2020-01-01", "2020-01-01"], "birth_year": [value, "1980"]})
    got = ingest(df, errors="quarantine")
    assert len(got.spells) == 1 and got.quarantine["_row"].tolist() == [1]
    assert [p.problem for p in got.report.errors] == ["not a number"]  # (and a warning: no end_date column)


def test_a_frame_with_columns_of_several_levels_is_refused_by_name():
    df = pd.DataFrame({"person_id": [P1], "institution": ["ALV"], "case_id": ["c1"], "start_date": ["2024-01-01"]})
    df.columns = pd.MultiIndex.from_tuples([(c, "x") for c in df.columns])
    with pytest.raises(ValidationError, match="2 levels"):
        ingest(df)


@given(st.lists(st.one_of(st.none(), st.text(alphabet="pqx019abAB -", max_size=7)), max_size=30),
       st.sampled_from(["p[0-9]+|q[0-9]+", "[0-9a-f]{4}|x", "ab|AB|x[0-9]", "p[0-9]+", "(p|q)[0-9]{2}", "[0-9a-f]{3}"]),
       st.booleans())
@hypothesis_settings(max_examples=200, deadline=None)
def test_a_deployment_pattern_must_match_the_whole_id_also_with_alternatives(values, pattern, categorical):
    """A pattern 'p[0-9]+|q[0-9]+' is matched as a whole: 'p1 Hans Muster' is no pseudonym (a slow reference)."""
    import re

    from iizrisk.validate import ValidationReport, check_pseudonyms

    col = pd.Series(values, dtype="category" if categorical else "str")
    bad = check_pseudonyms(col, pattern, ValidationReport(), "s")
    assert bad.tolist() == [v is not None and re.fullmatch(pattern, v) is None for v in values]


def test_an_id_that_only_begins_or_ends_like_a_pseudonym_is_refused(tmp_path):
    df = pd.DataFrame({"person_id": ["p1", "p1 Muster Hans", "Muster q2", "q2"], "institution": "SH",
                       "start_date": "2024-01-01"})
    with pytest.raises(ValidationError) as exc:
        ingest(df, pseudonym_pattern="p[0-9]+|q[0-9]+")
    (p,) = exc.value.report.errors
    assert p.problem == "person_id is not a pseudonym" and p.rows == (2, 3)


def test_an_exception_message_shows_no_value_of_the_rows_its_report_names(tmp_path):
    """A shifted column puts pseudonyms where dates belong: the message names column and rows, and the values
    stay in ``exc.report`` (for the analyst), out of logs and tracebacks that show the message."""
    write(tmp_path, f"{HEADER}\n{P1};A-1;{P3};\n{P2};A-2;01.02.2024;Muster Hans\n")
    with pytest.raises(ValidationError) as exc:
        ingest(settings(tmp_path))
    message = str(exc.value)
    assert "'start_date'" in message and "'end_date'" in message and "rows 1" in message
    assert P3[:10] not in message and "Muster" not in message
    assert {p.example for p in exc.value.report.errors} == {P3[:40], "Muster Hans"}
