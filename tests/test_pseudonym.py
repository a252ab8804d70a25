"""Pseudonymisation and the raw-identifier guard."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iizrisk.cli import main
from iizrisk.errors import KeyFileError
from iizrisk.pseudonym import (
    is_valid_ahv,
    load_key,
    looks_like_ahv,
    pseudonymise,
    pseudonymise_values,
)

KEY = b"0123456789abcdef0123456789abcdef"


def ref_check_digit(first12: str) -> int:
    """EAN-13 check digit the slow, obvious way."""
    total = 0
    for i, ch in enumerate(first12):
        total += int(ch) * (1 if i % 2 == 0 else 3)
    return (10 - total % 10) % 10


def make_ahv(body9: str, dotted: bool = False) -> str:
    first12 = "756" + body9
    number = first12 + str(ref_check_digit(first12))
    if dotted:
        return f"{number[:3]}.{number[3:7]}.{number[7:11]}.{number[11:]}"
    return number


def ref_valid(value) -> bool:
    if not isinstance(value, str):
        return False
    v = value.strip().replace(".", "").replace(" ", "")
    if len(v) != 13 or not v.isdigit() or not v.startswith("756"):
        return False
    return ref_check_digit(v[:12]) == int(v[12])


digits9 = st.text(alphabet="0123456789", min_size=9, max_size=9)
any_value = st.one_of(
    st.builds(make_ahv, digits9, st.booleans()),
    st.text(alphabet="0123456789.756 ", max_size=17),
    st.none(),
)


@given(st.lists(any_value, max_size=40))
@settings(max_examples=200, deadline=None)
def test_validity_matches_reference(values):
    assert is_valid_ahv(values).tolist() == [ref_valid(v) for v in values]


@given(st.lists(st.builds(make_ahv, digits9, st.booleans()), min_size=1, max_size=20))
@settings(max_examples=50, deadline=None)
def test_hmac_matches_stdlib(values):
    got = pseudonymise_values(values, KEY)
    want = [hmac.new(KEY, v.replace(".", "").encode(), hashlib.sha256).hexdigest() for v in values]
    assert list(got) == want


def test_long_key_matches_stdlib():
    key = b"k" * 100
    v = make_ahv("123456789")
    assert pseudonymise_values([v], key)[0] == hmac.new(key, v.encode(), hashlib.sha256).hexdigest()


def test_same_number_same_pseudonym_across_institutions():
    n = make_ahv("987654321")
    alv = pd.DataFrame({"AHV": [n.replace(".", "")], "inst": ["ALV"]})
    sh = pd.DataFrame({"AHV": [make_ahv("987654321", dotted=True)], "inst": ["SH"]})
    a, _ = pseudonymise(alv, "AHV", KEY)
    b, _ = pseudonymise(sh, "AHV", KEY)
    assert a["person_id"].iloc[0] == b["person_id"].iloc[0]
    assert "AHV" not in a.columns
    other, _ = pseudonymise(alv, "AHV", KEY[::-1])
    assert other["person_id"].iloc[0] != a["person_id"].iloc[0]


def test_invalid_rows_reported_by_row_not_value():
    good = make_ahv("111222333")
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    df = pd.DataFrame({"AHV": [good, bad, "", "12345"], "x": [1, 2, 3, 4]})
    out, report = pseudonymise(df, "AHV", KEY)
    assert len(out) == 1
    assert report.invalid_rows.tolist() == [2, 4]
    assert report.missing_rows.tolist() == [3]
    text = report.to_text("file.csv", "AHV")
    assert bad not in text and "rows 2, 4" in text


def test_looks_like_ahv_on_numeric_and_text_columns():
    n = make_ahv("555666777")
    assert looks_like_ahv(pd.Series([int(n), 1, 2])).tolist() == [True, False, False]
    assert looks_like_ahv(pd.Series(["x", f" {make_ahv('555666777', True)} "])).tolist() == [False, True]
    # a 13-digit number with a wrong check digit is not an AHV number
    wrong = n[:-1] + str((int(n[-1]) + 1) % 10)
    assert not looks_like_ahv(pd.Series([wrong])).any()
    assert not looks_like_ahv(pd.Series(pd.to_datetime(["2024-01-01"]))).any()


def test_key_sources(tmp_path, monkeypatch):
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(tmp_path / "missing.key")
    short = tmp_path / "short.key"
    short.write_text("abc")
    with pytest.raises(KeyFileError, match="at least 16"):
        load_key(short)
    monkeypatch.delenv("IIZRISK_PSEUDONYM_KEY", raising=False)
    with pytest.raises(KeyFileError, match="never accepted as a command-line argument"):
        load_key(None)
    monkeypatch.setenv("IIZRISK_PSEUDONYM_KEY", KEY.decode())
    assert load_key(None) == KEY


def test_cli_pseudonymise(tmp_path, capsys, monkeypatch):
    n1, n2 = make_ahv("100000001", dotted=True), make_ahv("100000002")
    src = tmp_path / "alv.csv"
    src.write_bytes(f"AHV_NR;Eintritt;Ort\n{n1};01.02.2024;Zürich\n{n2};03.04.2024;Genève\n".encode("cp1252"))
    key = tmp_path / "k.key"
    key.write_bytes(KEY)
    out = tmp_path / "alv_pseudo.csv"
    assert main(["pseudonymise", "--key-file", str(key), "--id-column", "AHV_NR", str(src), str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "AHV_NR" not in text and n2 not in text and "Zürich" in text
    first = pd.read_csv(out, sep=";")["person_id"]
    assert first.str.len().eq(64).all()
    # missing key file: usage error, nothing written
    out2 = tmp_path / "o2.csv"
    code = main(["pseudonymise", "--key-file", str(tmp_path / "nokey"), "--id-column", "AHV_NR",
                 str(src), str(out2)])
    assert code == 2 and not out2.exists()
    assert "does not exist" in capsys.readouterr().err
    # invalid numbers: exit 1, nothing written, rows named, value not echoed
    bad = tmp_path / "bad.csv"
    wrong = n2[:-1] + str((int(n2[-1]) + 1) % 10)
    bad.write_text(f"AHV_NR;x\n{n2};1\n{wrong};2\n")
    out3 = tmp_path / "o3.csv"
    code = main(["pseudonymise", "--key-file", str(key), "--id-column", "AHV_NR", str(bad), str(out3)])
    err = capsys.readouterr().err
    assert code == 1 and not out3.exists() and "rows 2" in err and wrong not in err


def test_numbers_embedded_in_text_are_caught():
    n = make_ahv("123123123", dotted=True)
    wrong = n[:-1] + str((int(n[-1]) + 1) % 10)
    s = pd.Series([f"Rückruf erbeten, AHV {n}", f"Dossier {n.replace('.', '')}.", f"AHV {wrong}",
                   f"1{n.replace('.', '')}", "756 Fälle", None])
    assert looks_like_ahv(s).tolist() == [True, True, False, False, False, False]


def test_hex_pseudonyms_with_digit_runs_are_not_ahv_numbers():
    n = make_ahv("246813579")
    hexlike = pd.Series([f"ab{n}cd" + "e" * 47, f"{n}f" + "0" * 50, "f" * 51 + n])
    # 13 digits inside a run of hex characters: part of a pseudonym, not a number in text
    assert not looks_like_ahv(hexlike[:2]).any()
    # at the very end of a value a run of letters precedes it: still part of the token
    assert not looks_like_ahv(hexlike[2:]).any()


@given(st.lists(st.one_of(st.builds(make_ahv, digits9, st.booleans()),
                          st.builds(lambda a, b: f"{a} {b}", st.text("abc756 ", max_size=6),
                                    st.builds(make_ahv, digits9, st.booleans())),
                          st.text(alphabet="0123456789.756 ab", max_size=20), st.none()), max_size=30))
@settings(max_examples=200, deadline=None)
def test_looks_like_ahv_matches_a_per_value_reference(values):
    import re

    from iizrisk.pseudonym import _EMBEDDED

    def ref(v):
        return isinstance(v, str) and (ref_valid(v) or any(ref_valid(m) for m in re.findall(_EMBEDDED, v)))

    assert looks_like_ahv(pd.Series(values, dtype="str")).tolist() == [ref(v) for v in values]
