"""Pseudonymisation and the raw-identifier guard."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from iizrisk.cli import main
from iizrisk.errors import KeyFileError, PseudonymisationError
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
    # a header without rows: exit 1, nothing written (it printed "0 rows pseudonymised" with exit 0)
    empty = tmp_path / "empty.csv"
    empty.write_text("AHV_NR;x\n")
    code = main(["pseudonymise", "--key-file", str(key), "--id-column", "AHV_NR", str(empty), str(out3)])
    assert code == 1 and not out3.exists() and "no rows; nothing written" in capsys.readouterr().err


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


# ------------------------------------------------------------------ every spelling of an AHV number
def ref_normalise(v: str) -> str:
    """The ASCII spelling of digits, spaces, dashes and apostrophes, one character at a time."""
    import unicodedata

    out = []
    for ch in unicodedata.normalize("NFKC", v):
        cat = unicodedata.category(ch)
        if cat == "Cf":
            continue
        if cat == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        elif cat == "Pd" or ch in "\u2212\u2043":
            out.append("-")
        elif ch in "\u2018\u2019\u201b\u2032\u02bc\u00b4`":
            out.append("'")
        elif cat.startswith("Z"):
            out.append(" ")
        elif ch in "\u00b7\u2022\u2027\u2219\u22c5\u2e31\u30fb":
            out.append(".")
        elif ch in "\u2044\u2215\u29f8":
            out.append("/")
        elif ch in "\u2236\ua789":
            out.append(":")
        else:
            out.append(ch)
    return "".join(out)


_NOT_AFTER = r"(?<![0-9])(?<![0-9][.,])"  # not inside a longer number, not a decimal fraction
_REF_PATTERNS = [
    _NOT_AFTER + r"(?P<n>756(?P<s1>[.\-_/\\|,:;' \t\r\n]{0,3})[0-9]{4}(?P<s2>[.\-_/\\|,:;' \t\r\n]{0,3})[0-9]{4}"
    r"(?P<s3>[.\-_/\\|,:;' \t\r\n]{0,3})[0-9]{2})(?![0-9])",
    _NOT_AFTER + r"(?P<n>7(?P<g>[' .,])56[0-9](?P=g)[0-9]{3}(?P=g)[0-9]{3}(?P=g)[0-9]{3})(?![0-9])(?!(?P=g)[0-9])",
    _NOT_AFTER + r"(?P<n>7[.,]56[0-9]{10})0{0,6}[eE]\+?0?12(?![0-9])",
]


def ref_ascii(text: str) -> bool:
    """The slow, obvious reading of looks_like_ahv's rules on an ASCII-spelled value."""
    import re

    for pattern in _REF_PATTERNS:
        for m in re.finditer(f"(?=({pattern}))", text):
            start = m.start()
            digits = "".join(c for c in m.group("n") if c.isdigit())
            if not (len(digits) == 13 and ref_check_digit(digits[:12]) == int(digits[12])):
                continue
            if pattern is _REF_PATTERNS[0] and not (m.group("s1") or m.group("s2") or m.group("s3")):
                # 13 digits in a row inside a hex run of >= 16 characters (looking 16 each way): a hash
                left = re.search(r"[0-9A-Za-z]*\Z", text[max(0, start - 16): start]).group()
                right = re.match(r"[0-9A-Za-z]*", text[start + 13: start + 13 + 16]).group()
                hexrun = re.fullmatch(r"[0-9a-fA-F]*", left + right) is not None
                if hexrun and len(left) + 13 + len(right) >= 16:
                    continue
            return True
    return False


def ref_looks_like_ahv(v) -> bool:
    if not isinstance(v, str):
        return False
    # values with characters beyond ASCII and Latin letters (U+00C0-U+017F) are normalised too
    beyond = any(ord(c) >= 0x80 and not 0xC0 <= ord(c) <= 0x17F for c in v)
    return ref_ascii(v) or (beyond and ref_ascii(ref_normalise(v)))


def spellings(number: str) -> list[str]:
    """The ways exports write one 13-digit number."""
    a, b, c, d = number[:3], number[3:7], number[7:11], number[11:]
    t = [number[0], number[1:4], number[4:7], number[7:10], number[10:]]
    return [
        f"{a}.{b}.{c}.{d}", f"{a}-{b}-{c}-{d}", f"{a} {b} {c} {d}", number,
        f"{a}\u00a0{b}\u00a0{c}\u00a0{d}", f"{a}\u202f{b}\u202f{c}\u202f{d}", f"{a}\u2009{b}\u2009{c}\u2009{d}",
        f"{a}\u2013{b}\u2013{c}\u2013{d}", f"{a}\u200b{b}{c}{d}",
        f"RAV{number}", f"Nr.{a}.{b}.{c}.{d}", f"AHV:{a}.{b}.{c}.{d}", f"AHV_{number}", f"AHV {number}.",
        f"{number[0]}.{number[1:]}E+12", f"{number[0]},{number[1:]}E+12", f"{number[0]}.{number[1:]}00e+012",
        "'".join(t), "\u2019".join(t), " ".join(t), "\u202f".join(t), ",".join(t), f"{number}.0",
        f"{a}_{b}_{c}_{d}", f"{a},{b},{c},{d}", f"{a}:{b}:{c}:{d}", f"{a}\u00b7{b}\u00b7{c}\u00b7{d}",
        f"{a}/{b}/{c}/{d}", f"{a};{b};{c};{d}", f"{a}|{b}|{c}|{d}", f"{a}'{b}'{c}'{d}", f"{a}\u2022{b}\u2022{c}\u2022{d}",
        f"{a} . {b} . {c} . {d}", f"{a} _{b}\u00a0-\u00a0{c}\r\n{d}", f"AHV_{a}_{b}_{c}_{d}", f"{a}\uff3f{b}\uff3f{c}\uff3f{d}",
        number.translate({ord(str(i)): 0xFF10 + i for i in range(10)}),  # full-width
        number.translate({ord(str(i)): 0x0660 + i for i in range(10)}),  # Arabic-Indic
        number.translate({ord(str(i)): 0x0966 + i for i in range(10)}),  # Devanagari
    ]


@pytest.mark.parametrize("i", range(len(spellings("7561234567897"))))
def test_every_spelling_of_a_valid_number_is_caught(i):
    n = make_ahv("123456789")
    wrong = n[:-1] + str((int(n[-1]) + 1) % 10)
    good, bad = spellings(n)[i], spellings(wrong)[i]
    assert looks_like_ahv(pd.Series([good, bad, f"Rückruf, {good}", None], dtype="str")).tolist() == \
        [True, False, True, False], repr(good)
    assert ref_looks_like_ahv(good) and not ref_looks_like_ahv(bad)


def test_not_caught_longer_numbers_fractions_and_hashes():
    n = make_ahv("123456789")
    values = [f"1{n}", f"{n}5", f"0.{n}", f"12,{n}", "7.56123E+12", "756 Fälle", "Tel. 044 756 12 34",
              f"ab{n}cd" + "e" * 47, "f" * 51 + n, f"{n}f" + "0" * 50,
              f"ALV-ab{n}c", f"ABC{n}",  # hex case numbers: a glued hex prefix is not told from one
              "g" * 51 + n, f"ABCG{n}", f"AB{n}"]
    assert looks_like_ahv(pd.Series(values, dtype="str")).tolist() == [False] * 12 + [True] * 3


def test_separators_do_not_make_dates_case_numbers_or_lists_ahv_numbers():
    """The wider set of separators (D26) still needs 756, groups of 4, 4 and 2 and a valid check digit."""
    n = make_ahv("660487647")
    a, b, c, d = n[:3], n[3:7], n[7:11], n[11:]
    values = ["ALV-2023-000123", "2024-06-30", "30.06.2024", "12:30:45", "2024-06-30/2025-06-30",
              "756_1234", "Tel. 044 756 12 34", f"{a} .  .{b}.{c}.{d}",  # four separators
              f"1{a}_{b}_{c}_{d}", f"{a}_{b}_{c}{d}0", f"{a}__{b}__{c}__{d[0]}_{d[1]}",
              f"{a}_{b}_{c}_{d}"]
    assert looks_like_ahv(pd.Series(values, dtype="str")).tolist() == [False] * 11 + [True]


def test_hex_case_numbers_are_not_caught():
    """16 random hex digits hold a valid 13-digit run about once in two million values."""
    rng = np.random.default_rng(5)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[rng.integers(0, 16, (10**5, 16))]
    n = make_ahv("135792468")
    digits[::7, 1:14] = np.frombuffer(n.encode(), dtype=np.uint8)
    values = pd.Series(np.char.add("SH-", digits.view("S16").ravel().astype(str)), dtype="str")
    assert not looks_like_ahv(values).any()


def test_numbers_in_numeric_columns():
    n = int(make_ahv("123456789"))
    assert looks_like_ahv(pd.Series([n, 5, None], dtype="Int64")).tolist() == [True, False, False]
    assert looks_like_ahv(pd.Series([float(n), 7.5e12, np.nan])).tolist() == [True, False, False]
    assert looks_like_ahv(pd.Series([n, 1], dtype=object)).tolist() == [True, False]
    assert looks_like_ahv(pd.Series(pd.Categorical([str(n), "x", None]))).tolist() == [True, False, False]
    assert not looks_like_ahv(pd.Series([True, False])).any()


_INT_DTYPES = ["Int8", "Int16", "Int32", "Int64", "UInt16", "UInt32", "UInt64", "int16", "int32", "int64", "uint64",
               "int16[pyarrow]", "uint8[pyarrow]", "int64[pyarrow]", "Sparse[int16]", "Sparse[int64]"]


@given(st.sampled_from(_INT_DTYPES), st.data())
@settings(max_examples=300, deadline=None)
def test_integer_columns_of_every_width_as_their_values_as_floats(dtype, data):
    """Narrow integer columns are skipped as too narrow for 13 digits; every width agrees with the
    float reading of the same values (exact below 2**53), AHV numbers included where they fit."""
    base = pd.Series([], dtype=dtype).dtype
    info = np.iinfo(base.numpy_dtype if hasattr(base, "numpy_dtype") else getattr(base, "subtype", base))
    ahv = int(make_ahv("123456789"))
    value = st.one_of(st.integers(max(info.min, -(2**53)), min(info.max, 2**53)),
                      st.sampled_from([ahv, ahv + 1, info.max, info.min]).filter(lambda v: info.min <= v <= info.max))
    values = data.draw(st.lists(value, max_size=20))
    got = looks_like_ahv(pd.Series(values, dtype=dtype))
    want = looks_like_ahv(pd.Series(values, dtype="float64")) if values else np.zeros(0, dtype=bool)
    assert got.tolist() == want.tolist()
    if ahv in values:
        assert got.any()


_hex = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@given(st.lists(_hex, min_size=1, max_size=200))
@settings(max_examples=300, deadline=None)
def test_random_hex_pseudonyms_are_never_caught(values):
    assert not looks_like_ahv(pd.Series(values, dtype="str")).any()


def test_a_million_random_pseudonyms_are_not_caught():
    rng = np.random.default_rng(3)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[rng.integers(0, 16, (10**6, 64))]
    # a few with 13 digits in a row planted that pass the check digit: a hash still
    n = make_ahv("246813579")
    digits[:1000, 20:33] = np.frombuffer(n.encode(), dtype=np.uint8)
    values = pd.Series(digits.view("S64").ravel().astype(str), dtype="str")
    assert not looks_like_ahv(values).any()


_piece = st.one_of(
    st.builds(make_ahv, digits9).flatmap(lambda n: st.sampled_from(spellings(n))),
    st.builds(make_ahv, digits9).map(lambda n: n[:-1] + "0"),
    st.text(alphabet="0123456789.,-' eE+7566abcfxyzRAV:_/;|\\\t\r\n\u00a0\u202f\u200b\u2013\u00b7\u2022\uff17\u0667ü",
            max_size=14),
    st.text(alphabet="0123456789abcdef", min_size=0, max_size=40),
    st.text(max_size=6),
)
_value = st.one_of(st.none(), st.lists(_piece, max_size=4).map("".join))


@given(st.lists(_value, max_size=30))
@settings(max_examples=400, deadline=None)
def test_looks_like_ahv_matches_a_per_value_reference(values):
    assert looks_like_ahv(pd.Series(values, dtype="str")).tolist() == [ref_looks_like_ahv(v) for v in values]


@given(st.lists(_value, min_size=1, max_size=20), st.integers(0, 3), st.sampled_from([1, 2, 3, 7, 1 << 24]))
@settings(max_examples=200, deadline=None)
def test_byte_scan_blocks_and_array_offsets(values, offset, block):
    import pyarrow as pa

    from iizrisk import pseudonym as P

    arr = pa.array(["pad756"] * offset + values, type=pa.large_string()).slice(offset)
    beyond = [v is not None and any(ord(c) >= 0x80 and not 0xC0 <= ord(c) <= 0x17F for c in v) for v in values]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(P, "_BLOCK", block)
        mp.setattr(P, "_ANCHORS_AT_ONCE", 2)
        assert P._scan_text(arr).tolist() == [v is not None and ref_ascii(v) for v in values]
        assert P._rows_to_normalise(arr).tolist() == np.flatnonzero(beyond).tolist()
        got = looks_like_ahv(pd.Series(values, dtype="str"))
    assert got.tolist() == [ref_looks_like_ahv(v) for v in values]


def test_exotic_unicode_never_crashes():
    values = ["\U0001d7d5\U0001d7d3\U0001d7d4", "٧٥٦", "\x00756\x00", "\ufeff7561234567897", "①②③", "𝟕𝟓𝟔", "\u0000" * 3]
    got = looks_like_ahv(pd.Series(values, dtype="str"))
    assert got.tolist() == [ref_looks_like_ahv(v) for v in values]


# ------------------------------------------------------------------ the command never lets a number out
def _run(argv, capsys) -> tuple[int, str]:
    """Exit code (also of a usage error) and everything printed."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def _leaks(text: str, encodings=()) -> bool:
    """Whether ``text`` holds an AHV number, also once encoded again in one of ``encodings`` (read as Latin-1)."""
    again = [text.encode(enc, errors="ignore").decode("latin-1") for enc in encodings]
    return bool(looks_like_ahv(pd.Series([text, *again], dtype="str")).any())


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "k.key"
    path.write_bytes(KEY)
    return path


@pytest.mark.parametrize("mode, refused", [(0o600, None), (0o640, None), (0o644, "anyone on this machine can read it"),
                                           (0o620, "others than its owner can replace it")])
def test_a_key_file_open_to_others_is_refused(key_file, capsys, tmp_path, mode, refused):
    """A pseudonymisation key anyone may read reverses every pseudonym: refused, by the API and the command."""
    from iizrisk.cli import main
    from iizrisk.errors import KeyFileError
    from iizrisk.pseudonym import load_key

    key_file.chmod(mode)
    if refused is None:
        assert load_key(key_file) == KEY
        return
    with pytest.raises(KeyFileError, match=f"mode {mode:04o}: {refused}.*chmod 600") as err:
        load_key(key_file)
    assert KEY.decode(errors="replace") not in str(err.value)
    src = tmp_path / "in.csv"
    src.write_text("ahv;x\n756.1234.5678.97;1\n", encoding="utf-8")
    assert main(["pseudonymise", "--key-file", str(key_file), "--id-column", "ahv", str(src),
                 str(tmp_path / "out.csv")]) == 2
    assert "chmod 600" in capsys.readouterr().err and not (tmp_path / "out.csv").exists()


def test_a_key_file_others_may_replace_or_that_never_ends_is_refused(tmp_path):
    """Only the mode bits were checked: a key owned by another account, or in a folder anyone may change, was
    trusted (and a model signed with it unpickled); a named pipe blocked the nightly run forever."""
    from iizrisk.errors import KeyFileError

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "k.key").write_bytes(KEY)
    (shared / "k.key").chmod(0o600)
    for mode, refused in ((0o700, None), (0o750, None), (0o770, "has mode 0770: others can change it"),
                          (0o777, "has mode 0777"), (0o1777, None)):  # sticky, as /tmp: nobody replaces it
        shared.chmod(mode)
        if refused is None:
            assert load_key(shared / "k.key") == KEY
            continue
        with pytest.raises(KeyFileError, match=f"lies in the folder {shared}, which {refused}.*chmod 700"):
            load_key(shared / "k.key")
        safe = tmp_path / "safe"
        safe.mkdir(mode=0o700, exist_ok=True)
        link = safe / "k.key"
        link.unlink(missing_ok=True)
        link.symlink_to(shared / "k.key")  # a link from a safe folder does not make the real one safe
        with pytest.raises(KeyFileError, match=f"lies in the folder {shared}"):
            load_key(link)
    shared.chmod(0o700)
    os.mkfifo(tmp_path / "pipe.key", 0o600)
    with pytest.raises(KeyFileError, match=r"pipe.key is a named pipe \(FIFO\), not a regular file; give the path of the file that holds the key"):
        load_key(tmp_path / "pipe.key")
    if os.geteuid() == 0:  # only root can give a file to another account
        os.chown(shared / "k.key", 65534, -1)
        with pytest.raises(KeyFileError, match="belongs to another account \\(uid 65534\\)"):
            load_key(shared / "k.key")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "cp500"])
def test_cli_a_header_read_in_the_wrong_encoding_is_not_shown(tmp_path, capsys, key_file, encoding):
    n = make_ahv("123456789", dotted=True)
    src = tmp_path / "alv.csv"
    src.write_bytes(f"ahv;note\n{n};x\n{n};yz\n".encode())  # an even length: UTF-16 decodes it
    garbage = src.read_bytes().decode(encoding)
    out = tmp_path / "o.csv"
    code, text = _run(["pseudonymise", "--key-file", str(key_file), "--id-column", "ahv", "--encoding", encoding,
                       str(src), str(out)], capsys)
    assert code == 1 and not out.exists(), text
    assert "check --encoding" in text and "'ahv' not found" in text
    assert garbage[:3] not in text and not _leaks(text, ["utf-16-le", "utf-16-be", encoding])


def test_readable_columns_shows_plain_names_only():
    from iizrisk.pseudonym import readable_columns

    assert readable_columns(["AHV_NR", "Eintritt", "Genève", "Straße", "Nr."]) == \
        "['AHV_NR', 'Eintritt', 'Genève', 'Straße', 'Nr.']"
    assert readable_columns([f"c{i}" for i in range(40)]).endswith("'c29'] and 10 more")
    withheld = [["\u6861\u3b76\u6f6e\u6574"], ["ok", "a\x01b"], ["x" * 101], ["ok", f"AHV {make_ahv('123456789')}"],
                ["\u0430\u0431\u0432"], ["a\ufffdb"], ["tab\there"]]
    assert [readable_columns(names) for names in withheld] == [None] * len(withheld)


def test_pseudonymise_does_not_echo_a_garbled_header():
    n = make_ahv("123456789", dotted=True)
    garbled = f"ahv;note\n{n};x\n".encode().decode("utf-16-le")
    with pytest.raises(PseudonymisationError, match="check the file's encoding") as err:
        pseudonymise(pd.DataFrame({garbled: ["1"]}), "ahv", KEY)
    assert garbled not in str(err.value) and not _leaks(str(err.value), ["utf-16-le"])
    with pytest.raises(PseudonymisationError, match=r"columns are \['AHV_NR'\]"):
        pseudonymise(pd.DataFrame({"AHV_NR": ["1"]}), "ahv", KEY)
    with pytest.raises(PseudonymisationError, match="name withheld") as err:
        pseudonymise(pd.DataFrame({"AHV_NR": ["1"]}), n, KEY)
    assert not _leaks(str(err.value))


@pytest.mark.parametrize("skip", [False, True])
def test_cli_refuses_ahv_numbers_in_other_columns(tmp_path, capsys, key_file, skip):
    n1, n2 = make_ahv("100000001"), make_ahv("100000002", dotted=True)
    src = tmp_path / "alv.csv"
    src.write_text(f"ahv;x;note;ort\n{n1};{n1};ok;Bern\n{n2};;Rückruf AHV {n2};Biel\n{n1};1;ok;Thun\n",
                   encoding="utf-8")
    out = tmp_path / "o.csv"
    code, text = _run(["pseudonymise", "--key-file", str(key_file), "--id-column", "ahv", str(src), str(out),
                       *(["--skip-invalid"] if skip else [])], capsys)
    assert code == 1, text
    assert not out.exists() and not (tmp_path / "o.csv.invalid.csv").exists()
    assert "'x'" in text and "'note'" in text and "'ort'" not in text and "rows 1" in text and "rows 2" in text
    assert not _leaks(text)


def test_cli_refuses_ahv_numbers_in_other_parquet_columns(tmp_path, capsys, key_file):
    n = make_ahv("100000003")
    src = tmp_path / "alv.parquet"
    pd.DataFrame({"ahv": [n, n], "old_id": [5, int(n)]}).to_parquet(src)
    out = tmp_path / "o.parquet"
    code, text = _run(["pseudonymise", "--key-file", str(key_file), "--id-column", "ahv", str(src), str(out)],
                      capsys)
    assert code == 1 and not out.exists() and "'old_id'" in text and "rows 2" in text and not _leaks(text)
    pd.DataFrame({"ahv": [n], n: ["x"]}).to_parquet(src)  # a column named by an AHV number
    code, text = _run(["pseudonymise", "--key-file", str(key_file), "--id-column", "ahv", str(src), str(out)],
                      capsys)
    assert code == 1 and not out.exists() and "column header #2" in text and not _leaks(text)


@pytest.mark.parametrize("option", ["--out-column", "--id-column", "--encoding", "--separator", "OUT", "IN",
                                    "--key-file"])
def test_cli_refuses_ahv_numbers_in_its_arguments_without_echoing_them(tmp_path, capsys, key_file, option):
    n = make_ahv("123456789")
    src = tmp_path / "alv.csv"
    src.write_text(f"ahv;x\n{n};1\n")
    args = {"--key-file": str(key_file), "--id-column": "ahv", "IN": str(src), "OUT": str(tmp_path / "o.csv")}
    for value in (n, make_ahv("123456789", dotted=True), f"AHV_{n}"):
        args[option] = {"IN": str(tmp_path / f"{value}.csv"), "OUT": str(tmp_path / f"{value}.csv"),
                        "--key-file": str(tmp_path / value)}.get(option, value)
        argv = ["pseudonymise", *[x for k, v in args.items() if k.startswith("--") for x in (k, v)],
                args["IN"], args["OUT"]]
        code, text = _run(argv, capsys)
        assert code == 2, text
        assert "withheld" in text and not _leaks(text)
        assert not list(tmp_path.glob("*756*"))


def test_cli_never_writes_over_its_input_or_key(tmp_path, capsys, key_file):
    n = make_ahv("123456789")
    src = tmp_path / "alv.csv"
    raw = f"ahv;x\n{n};1\n{n[:-1]}0;2\n"
    src.write_text(raw)
    (tmp_path / "link.csv").symlink_to(src)
    (tmp_path / "sub").mkdir()
    key_txt = tmp_path / "key.txt"
    key_txt.write_bytes(KEY)
    base = ["pseudonymise", "--key-file", str(key_file), "--id-column", "ahv", "--skip-invalid"]
    for out in (src, tmp_path / "link.csv", tmp_path / "sub" / ".." / "alv.csv"):
        code, text = _run([*base, str(src), str(out)], capsys)
        assert code == 2 and "is the IN input" in text and "give OUT another file" in text, text
    os.link(src, tmp_path / "hard.csv")
    code, text = _run([*base, str(tmp_path / "hard.csv"), str(src)], capsys)
    assert code == 2 and "is the IN input" in text
    # the list of invalid rows (OUT.invalid.csv) neither
    side = tmp_path / "o.csv.invalid.csv"
    side.write_text(raw)
    code, text = _run([*base, str(side), str(tmp_path / "o.csv")], capsys)
    assert code == 2 and "OUT.invalid.csv" in text and "is the IN input" in text and not (tmp_path / "o.csv").exists()
    code, text = _run(["pseudonymise", "--key-file", str(key_txt), "--id-column", "ahv", str(src),
                       str(key_txt)], capsys)
    assert code == 2 and "is the --key-file input" in text and key_txt.read_bytes() == KEY
    assert src.read_text() == raw and side.read_text() == raw


def test_cli_output_is_owner_only_in_both_formats(tmp_path, capsys, key_file):
    src = tmp_path / "alv.csv"
    src.write_text(f"ahv;x\n{make_ahv('123456789')};1\n")
    old = os.umask(0o022)
    try:
        for suffix in (".csv", ".parquet"):
            out = tmp_path / f"o{suffix}"
            code, _ = _run(["pseudonymise", "--key-file", str(key_file), "--id-column", "ahv", str(src),
                            str(out)], capsys)
            assert code == 0 and stat.S_IMODE(out.stat().st_mode) == 0o600, suffix
    finally:
        os.umask(old)
    assert not list(tmp_path.glob(".o*.tmp"))


@pytest.mark.parametrize("key", [b"", b"k", b"0123456789abcde", bytearray(b"short")])
def test_the_api_refuses_a_short_key_as_load_key_does(key):
    """An empty or short key lets anyone reverse the pseudonyms by trying every AHV number:
    pseudonymise and pseudonymise_values refuse it (as load_key does), without echoing it."""
    from iizrisk.errors import KeyFileError
    from iizrisk.pseudonym import MIN_KEY_BYTES

    df = pd.DataFrame({"ahv": [make_ahv("123456789")]})
    for call in (lambda: pseudonymise(df, "ahv", key), lambda: pseudonymise_values(df["ahv"], key)):
        with pytest.raises(KeyFileError, match=f"holds {len(key)} bytes; a key needs at least {MIN_KEY_BYTES}") as exc:
            call()
        assert exc.value.exit_code == 2
        assert repr(bytes(key)) not in str(exc.value) and repr(bytes(key).decode()) not in str(exc.value)


def test_the_api_refuses_a_key_that_is_not_bytes():
    df = pd.DataFrame({"ahv": [make_ahv("123456789")]})
    with pytest.raises(KeyFileError, match="must be bytes, got a str; read it with iizrisk.load_key") as exc:
        pseudonymise(df, "ahv", "a text key that is long enough for the length rule")
    assert "a text key" not in str(exc.value)
    with pytest.raises(KeyFileError, match="must be bytes, got a NoneType"):
        pseudonymise_values(df["ahv"], None)
    assert len(pseudonymise(df, "ahv", bytearray(KEY))[0]) == 1  # bytes-like keys are keys


# ------------------------------------------------------------------ what a review of mutants found unpinned
@given(st.integers(16, 130), st.builds(make_ahv, digits9))
@example(63, make_ahv("123456789"))
@example(64, make_ahv("123456789"))
@example(65, make_ahv("123456789"))
@settings(max_examples=60, deadline=None)
def test_keys_of_every_length_around_the_hmac_block_match_stdlib(n, number):
    """RFC 2104: a key of up to 64 bytes (the SHA-256 block) is padded, only a longer one is hashed first."""
    key = bytes((7 * i + n) % 256 for i in range(n))
    assert pseudonymise_values([number], key)[0] == hmac.new(key, number.encode(), hashlib.sha256).hexdigest()


_tail = st.sampled_from(["'000", "'0", " 000", ",000", ".000", "'", "000", "0", "E+12", "e12", "0E+12",
                         "00E+12", "000000E+12", "0000000E+12", "00000000E+12", "E+13", "E+012", "E+0012", "",
                         "7", ".0", ".5"])


@given(st.builds(make_ahv, digits9), st.sampled_from(["'", "\u2019", " ", ",", "."]), _tail)
@settings(max_examples=300, deadline=None)
def test_numbers_written_as_amounts_or_in_excel_notation_with_any_tail_as_the_reference(number, group, tail):
    """A thousands-separated or Excel-written number with more digits, zeros or exponents after it: caught
    exactly when the per-value reference says so (a larger number, or an exponent that is not 12, is no AHV
    number)."""
    t = [number[0], number[1:4], number[4:7], number[7:10], number[10:]]
    values = [group.join(t) + tail, f"{number[0]}.{number[1:]}{tail}", f"{number[0]},{number[1:]}{tail}",
              f"{number}{tail}"]
    assert looks_like_ahv(pd.Series(values, dtype="str")).tolist() == [ref_looks_like_ahv(v) for v in values]


@pytest.mark.parametrize("sep", [" ", "-", ".", "\t", "\u00a0", "\u2009", "\u202f", " - ", ". "])
def test_printed_forms_with_any_white_space_are_valid_and_give_one_pseudonym(sep):
    number = make_ahv("314159265")
    printed = sep.join([number[:3], number[3:7], number[7:11], number[11:]])
    assert is_valid_ahv([printed, f" {printed} "]).tolist() == [True, True]
    assert list(pseudonymise_values([printed, number], KEY)) == [pseudonymise_values([number], KEY)[0]] * 2
    out, report = pseudonymise(pd.DataFrame({"AHV": [printed]}), "AHV", KEY)
    assert report.ok and out["person_id"].tolist() == list(pseudonymise_values([number], KEY))
