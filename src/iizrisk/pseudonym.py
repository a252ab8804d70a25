"""Pseudonymisation at the source: keyed hashes of AHV numbers.

Each institution replaces the 13-digit AHV number (``756.XXXX.XXXX.XC``) by
``HMAC-SHA-256(key, normalised number)`` in hexadecimal before data leave it.
The key is shared by the institutions and never stored with the data; it is
read from a file or an environment variable, never from the command line.
The same number under the same key gives the same pseudonym everywhere.

The module also provides the raw-identifier guard: :func:`looks_like_ahv`
recognises values shaped like AHV numbers with a valid EAN-13 check digit,
and ingestion refuses any column that holds them.

Examples
--------
>>> is_valid_ahv(["756.1234.5678.97", "7561234567897", "756-1234-5678-97", "756.1234.5678.90", None]).tolist()
[True, True, True, False, False]
>>> key = b"a demo key that is long enough!!"
>>> p = pseudonymise_values(["756.1234.5678.97", "7561234567897"], key)
>>> p[0] == p[1], len(p[0])
(True, 64)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import sys
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._arrays import category_rows, integer_bits
from ._files import file_kind, read_regular
from .errors import KeyFileError, PseudonymisationError

__all__ = [
    "DEFAULT_KEY_ENV",
    "ahv_in_free_text",
    "MIN_KEY_BYTES",
    "normalise_ahv",
    "is_valid_ahv",
    "looks_like_ahv",
    "load_key",
    "pseudonymise_values",
    "pseudonymise",
    "PseudonymisationReport",
]

logger = logging.getLogger("iizrisk")

DEFAULT_KEY_ENV = "IIZRISK_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
_WEIGHTS = np.array([1, 3] * 6, dtype=np.int64)


def normalise_ahv(values) -> pd.Series:
    """Strip white space (also no-break and narrow spaces), dots and hyphens of the printed form.

    ``756.1234.5678.97`` and ``756-1234-5678-97`` -> ``7561234567897``.
    """
    s = pd.Series(values, dtype="str") if not isinstance(values, pd.Series) else values.astype("str")
    return s.str.replace("[.\\-\\s\u00a0\u2007\u2009\u202f]", "", regex=True)


def _check_digit_ok(digits13: pd.Series) -> np.ndarray:
    """EAN-13 check of strings already known to be 13 ASCII digits."""
    if len(digits13) == 0:
        return np.zeros(0, dtype=bool)
    buf = "".join(digits13.tolist()).encode("ascii")
    d = (np.frombuffer(buf, dtype=np.uint8).reshape(-1, 13) - 48).astype(np.int64)
    check = (10 - (d[:, :12] @ _WEIGHTS) % 10) % 10
    return check == d[:, 12]


def is_valid_ahv(values) -> np.ndarray:
    """Boolean mask: a valid 13-digit AHV number (``756`` prefix, EAN-13 check digit), dots allowed."""
    norm = normalise_ahv(values)
    shaped = norm.str.fullmatch(r"756\d{10}").fillna(False).to_numpy(dtype=bool)
    out = np.zeros(len(norm), dtype=bool)
    if shaped.any():
        out[shaped] = _check_digit_ok(norm[shaped])
    return out


def ahv_in_free_text(values) -> np.ndarray:
    """Boolean mask of free texts (notes, reasons) holding an AHV number, however written.

    :func:`looks_like_ahv`, and also ``756`` with ten more digits in any grouping or with a wrong check
    digit (``756 12345 67897``, ``756.12.34.56.78.97``, a mistyped ``756.1234.5678.90``): a person's own
    words have no use for either, and a note or a reason travels into the case view and the information
    document. Data columns keep the narrower :func:`looks_like_ahv` (a case number may start with 756).

    >>> ahv_in_free_text(["called on 756 12345 67890", "756.9217.0769.85", "case 4711"]).tolist()
    [True, True, False]
    """
    from .errors import _AHV_SPELLED

    text_ = pd.Series(values, dtype=object).map(lambda v: "" if v is None or v is pd.NA or v != v else str(v))
    spelled = text_.str.contains(_AHV_SPELLED, regex=True).to_numpy(dtype=bool)
    return np.asarray(looks_like_ahv(text_), dtype=bool) | spelled


def looks_like_ahv(values) -> np.ndarray:
    """Boolean mask of values holding an AHV number with a valid check digit, in any spelling.

    A value is caught when it holds a 13-digit number with the ``756`` prefix
    and a valid EAN-13 check digit written in any of the ways real exports
    write it:

    - printed with separators or none: ``756.1234.5678.97``, ``756-1234-5678-97``,
      ``756 1234 5678 97``, ``756_1234_5678_97``, ``756/1234/5678/97``, with ``,``,
      ``:``, ``;``, ``|``, ``\\``, ``'`` or middle dots (``756·1234·5678·97``), also
      non-breaking, narrow or thin spaces, Unicode dashes, zero-width characters,
      and up to three of them between two groups (``756 . 1234 . 5678 . 97``);
      or none: ``7561234567897``;
    - inside text, also glued to letters or punctuation: ``"Rückruf, AHV 756.1234.5678.97"``,
      ``RAV7561234567897``, ``Nr.756.1234.5678.97``, ``AHV:7561234567897``, ``AHV_7561234567897``;
    - as a number: thousands separators (``7'561'234'567'897``, ``7 561 234 567 897``),
      Excel's scientific notation (``7.561234567897E+12``, ``7,561234567897E+12``),
      a decimal tail (``7561234567897.0``), integer and float columns;
    - with full-width or other scripts' digits (``７５６...``, Arabic-Indic, ...):
      normalised (NFKC, then every Unicode decimal digit to its value) and flagged.

    Not caught: a number that is part of a longer run of digits (``17561234567897``)
    or the fraction of a decimal number (``0.7561234567897``), and 13 digits in a
    row inside a run of at least 16 hexadecimal characters and no other letters
    (looking 16 characters each way): a hash such as a 64-character pseudonym,
    or a hex case number, where random digit runs are frequent enough to pass a
    check digit now and then. So ``ABC7561234567897`` is not caught while
    ``RAV7561234567897`` and ``AHV7561234567897`` are; printed forms with
    separators are caught next to any characters.

    Vectorised: a byte scan of the Arrow buffers finds the anchors ``756`` and
    ``7?56`` (thousands and Excel forms) and checks the digit layouts around them
    with numpy; only values with non-Latin characters are normalised (Arrow's
    NFKC), and only values with digits of other scripts are mapped in Python.

    >>> looks_like_ahv(["RAV7561234567897", "7.561234567897E+12", "7561234567896", "ALV-1"]).tolist()
    [True, True, False, False]
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        return category_rows(looks_like_ahv(pd.Series(s.cat.categories.astype("str"))), s.cat.codes.to_numpy())
    if pd.api.types.is_bool_dtype(s.dtype):
        return np.zeros(len(s), dtype=bool)
    bits = integer_bits(s.dtype)
    if bits is not None and bits <= 32:
        return np.zeros(len(s), dtype=bool)  # too narrow for 13 digits (birth years as Int16)
    if s.dtype.kind in "iuf":
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        cand = (v >= 7560000000000) & (v <= 7569999999999) & (v % 1 == 0)
        out = np.zeros(len(s), dtype=bool)
        if cand.any():
            out[cand] = is_valid_ahv(pd.Series(v[cand].astype(np.int64).astype(str)))
        return out
    if not (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object):
        return np.zeros(len(s), dtype=bool)
    col = pa.chunked_array(pa.array(s.astype("str").array)).cast(pa.large_string())
    out = np.zeros(len(s), dtype=bool)
    first = 0
    for chunk in col.chunks:
        n = len(chunk)
        if n:
            out[first: first + n] = _scan_text(chunk)
            # values with characters beyond Latin letters: normalised, then scanned again
            rows = _rows_to_normalise(chunk)
            if len(rows):
                norm = _normalised(chunk.take(pa.array(rows)))
                found = _scan_text(norm)
                exotic, mapped = _with_ascii_digits(norm)
                if len(exotic):  # digits of other scripts: read with every digit mapped
                    found[exotic] = _scan_text(mapped)
                out[first + rows] |= found
        first += n
    return out


def _table(chars: bytes) -> np.ndarray:
    t = np.zeros(256, dtype=bool)
    t[np.frombuffer(chars, dtype=np.uint8)] = True
    return t


_DIGIT = _table(b"0123456789")
_HEX = _table(b"0123456789abcdefABCDEF")
_ALNUM = _table(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: between the groups of 756.1234.5678.97 (after normalisation: middle dots are ".", Unicode spaces " ")
_PRINT_SEP = _table(b".-_/\\|,:;' \t\r\n")
_MAX_SEP = 3  # separators in a row between two groups: "756 . 1234 . 5678 . 97"
_GROUP_SEP = _table(b"'., ")  # thousands separators of 7'561'234'567'897
_DECIMAL = _table(b".,")
_EXP = _table(b"eE")
_LEFT, _RIGHT = 2, 31  # bytes examined before and after an anchor
_HEX_TOKEN = 16  # a run of at least this many hex characters is a hash or hex code, not a glued number


def _rows_to_normalise(chunk: pa.Array) -> np.ndarray:
    """Rows (0-based, within ``chunk``) of a large_string array with characters beyond Latin letters.

    Their UTF-8 lead bytes are 0xC2 (no-break space, superscripts, ...) and
    0xC6 and above (other scripts, Unicode spaces and dashes, full-width
    forms); 0xC3-0xC5 (ä, é, ç, œ, ...) are ordinary text. Blocks of pure ASCII
    are skipped after one ``max``.
    """
    bufs = chunk.buffers()
    n = len(chunk)
    if not n or bufs[2] is None:
        return np.zeros(0, dtype=np.int64)
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[chunk.offset: chunk.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8)
    found = [np.zeros(0, dtype=np.int64)]
    lo, hi = int(offsets[0]), int(offsets[-1])
    for b0 in range(lo, hi, _BLOCK):
        seg = data[b0: min(hi, b0 + _BLOCK)]
        if seg.max() < 0xC2:
            continue
        h = np.flatnonzero(seg >= 0xC2)
        v = seg[h]
        h = h[(v == 0xC2) | (v >= 0xC6)] + b0
        if len(h):
            found.append(np.unique(np.searchsorted(offsets, h, side="right") - 1))
    rows = np.concatenate(found)
    return np.unique(rows) if len(found) > 2 else rows


def _anchors(data: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Positions in ``data[lo:hi]`` of ``756`` and of ``7?56`` (``?`` a thousands or decimal mark).

    The pair ``56`` is searched first, as 16-bit words at both alignments (one
    comparison per byte); the bytes before the few pairs found are checked next.
    """
    found = [np.zeros(0, dtype=np.int64)]
    for b0 in range(lo, hi, _BLOCK):
        seg = data[b0: min(hi, b0 + _BLOCK + 1)]  # one byte more: a pair across the block's end
        m = len(seg)
        even = np.flatnonzero(seg[: m - m % 2].view("<u2") == 0x3635) * 2
        odd = np.flatnonzero(seg[1: m - (m - 1) % 2].view("<u2") == 0x3635) * 2 + 1
        c = np.concatenate([even, odd])
        c = c[c < _BLOCK] + b0  # a pair starting at the next block is found there
        if not len(c):
            continue
        one, two = np.maximum(c - 1, 0), np.maximum(c - 2, 0)
        a = one[(c - 1 >= lo) & (data[one] == 55)]
        b = two[(c - 2 >= lo) & (data[two] == 55) & _GROUP_SEP[data[one]]]
        found += [a, b]
    p = np.concatenate(found)
    p.sort()
    return p


def _ean_ok(digits: np.ndarray) -> np.ndarray:
    """EAN-13 check of an (n, 13) matrix of digit values (0-9)."""
    check = (10 - (digits[:, :12].astype(np.int64) @ _WEIGHTS) % 10) % 10
    return check == digits[:, 12]


def _scan_text(chunk: pa.Array) -> np.ndarray:
    """Rows of a large_string array holding an AHV number in an ASCII spelling (see looks_like_ahv)."""
    n = len(chunk)
    out = np.zeros(n, dtype=bool)
    bufs = chunk.buffers()
    if not n or bufs[2] is None:
        return out
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[chunk.offset: chunk.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8)
    anchors = _anchors(data, int(offsets[0]), int(offsets[-1]))
    for a0 in range(0, len(anchors), _ANCHORS_AT_ONCE):
        p = anchors[a0: a0 + _ANCHORS_AT_ONCE]
        row = np.searchsorted(offsets, p, side="right") - 1
        out[row[_ahv_at(data, p, offsets[row], offsets[row + 1])]] = True
    return out


def _ahv_at(data: np.ndarray, p: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Which anchors ``p`` (in values ``[start, end)`` of ``data``) begin an AHV number."""
    # most anchors fail at once: after 756 (and up to three separators) come four digits; after 7? two digits
    ahead = p[:, None] + np.arange(3, 7 + _MAX_SEP)
    nxt = data[np.minimum(ahead, len(data) - 1)]
    nxt[ahead >= end[:, None]] = 0
    nd, ns = _DIGIT[nxt], _PRINT_SEP[nxt]
    maybe = data[p + 1] != 53
    for skip in range(_MAX_SEP + 1):
        maybe |= ns[:, :skip].all(axis=1) & nd[:, skip: skip + 4].all(axis=1)
    hit = np.zeros(len(p), dtype=bool)
    keep = np.flatnonzero(maybe)
    if len(keep):
        hit[keep] = _ahv_layouts(data, p[keep], start[keep], end[keep])
    return hit


def _ahv_layouts(data: np.ndarray, p: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    # W[:, _LEFT + k] is the byte at p + k, or 0 outside the value
    pos = p[:, None] + np.arange(-_LEFT, _RIGHT + 1)
    inside = (pos >= start[:, None]) & (pos < end[:, None])
    W = np.where(inside, data[np.clip(pos, 0, len(data) - 1)], 0).astype(np.uint8)

    def at(k):
        return W[:, _LEFT + k]

    digit = _DIGIT[W]
    # not the continuation of a longer number nor the fraction of a decimal one (0.756...)
    left_ok = ~digit[:, _LEFT - 1] & ~(_DECIMAL[at(-1)] & digit[:, _LEFT - 2])
    hit = np.zeros(len(p), dtype=bool)
    # 756 1234 5678 97, each of the three separators present or not
    is756 = (at(1) == 53) & (at(2) == 54) & left_ok
    idx = np.flatnonzero(is756)
    if len(idx):
        hit[idx[_grouped_756(W[idx], data, p[idx], start[idx], end[idx])]] = True
    # 7'561'234'567'897: thousands separators
    offs = [0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16]
    ok = left_ok & _GROUP_SEP[at(1)] & (at(5) == at(1)) & (at(9) == at(1)) & (at(13) == at(1))
    ok &= digit[:, [_LEFT + o for o in offs]].all(axis=1) & ~digit[:, _LEFT + 17]
    ok &= ~((at(17) == at(1)) & digit[:, _LEFT + 18])  # 7'561'234'567'897'000 is a larger number
    idx = np.flatnonzero(ok)
    hit[idx[_ean_ok(W[idx][:, [_LEFT + o for o in offs]] - 48)]] = True
    # 7.561234567897E+12 (Excel): mantissa 7.56 and ten more digits, trailing zeros, exponent 12
    offs = [0, *range(2, 14)]
    ok = left_ok & _DECIMAL[at(1)] & digit[:, [_LEFT + o for o in offs]].all(axis=1)
    if ok.any():
        rows = np.arange(len(p))
        zeros = np.cumprod(W[:, _LEFT + 14: _LEFT + 21] == 48, axis=1).sum(axis=1)
        q = _LEFT + 14 + zeros  # column of the exponent letter
        ok &= _EXP[W[rows, np.minimum(q, W.shape[1] - 1)]] & (zeros < 7)
        r = q + 1 + (W[rows, np.minimum(q + 1, W.shape[1] - 1)] == 43)  # '+'
        r = r + (W[rows, np.minimum(r, W.shape[1] - 1)] == 48)  # E+012
        r = np.minimum(r, W.shape[1] - 3)
        ok &= (W[rows, r] == 49) & (W[rows, r + 1] == 50) & ~digit[rows, r + 2]
        idx = np.flatnonzero(ok)
        hit[idx[_ean_ok(W[idx][:, [_LEFT + o for o in offs]] - 48)]] = True
    return hit


def _grouped_756(W: np.ndarray, data: np.ndarray, p: np.ndarray, start: np.ndarray,
                 end: np.ndarray) -> np.ndarray:
    """Which windows ``W`` (an anchor ``756`` at column ``_LEFT``) hold ``756 1234 5678 97``.

    Between the groups a run of up to :data:`_MAX_SEP` separators (``.``, ``-``, ``_``, ``/``,
    ``,``, ``:``, spaces, ...; see ``_PRINT_SEP``) or none; 13 digits in a row inside a long
    hex token (a hash) are not a number. Group by group, each row at its own column, the rows
    that fail dropped at once.
    """
    n, width = W.shape
    flat = np.ascontiguousarray(W).ravel()
    idx = np.arange(n)  # the rows still in the running, narrowed after each group
    k = idx * width + _LEFT + 3  # where the next separators or digits are, in ``flat``
    any_sep = np.zeros(n, dtype=bool)
    starts: list[np.ndarray] = []  # per group, where its digits start
    for group in (4, 4, 2):
        run = np.zeros(len(idx), dtype=np.int64)
        still = np.ones(len(idx), dtype=bool)
        for j in range(_MAX_SEP + 1):  # the run of separators, counted up to one too many
            still &= _PRINT_SEP[flat[k + j]]
            run += still
        ok = run <= _MAX_SEP
        k = k + run
        for j in range(group + (group == 2)):  # the last group: no digit after it
            ok &= _DIGIT[flat[k + j]] != (j == 2 == group)
        idx, k, run = idx[ok], k[ok], run[ok]
        starts = [s_[ok] for s_ in starts] + [k]
        any_sep[idx] |= run > 0
        k = k + group
    hit = np.zeros(n, dtype=bool)
    if not len(idx):
        return hit
    cols = np.concatenate([(idx * width + _LEFT)[:, None] + np.arange(3)]  # 756, then the three groups
                          + [s_[:, None] + np.arange(g) for s_, g in zip(starts, (4, 4, 2), strict=True)], axis=1)
    idx = idx[_ean_ok(flat[cols].astype(np.int64) - 48)]
    glued = idx[~any_sep[idx]]  # 13 digits in a row: not inside a long hex token (a hash)
    hit[idx] = True
    hit[glued] = ~_in_hex_token(data, p[glued], start[glued], end[glued])
    return hit


def _in_hex_token(data: np.ndarray, p: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Whether the 13 digits at ``p`` lie inside a run of >= 16 hex characters and no other letters."""
    if not len(p):
        return np.zeros(0, dtype=bool)
    k = np.arange(1, _HEX_TOKEN + 1)

    def runs(pos, valid):
        b = np.where(valid, data[np.clip(pos, 0, len(data) - 1)], 0)
        alnum = np.cumprod(_ALNUM[b], axis=1).sum(axis=1)
        hexr = np.cumprod(_HEX[b], axis=1).sum(axis=1)
        return alnum, hexr

    left = p[:, None] - k
    la, lh = runs(left, left >= start[:, None])
    right = p[:, None] + 12 + k
    ra, rh = runs(right, right < end[:, None])
    return (la == lh) & (ra == rh) & (la + 13 + ra >= _HEX_TOKEN)


@cache
def _digit_table() -> dict[int, int]:
    """Every Unicode decimal digit (Arabic-Indic, Devanagari, ...) to its ASCII digit."""
    return {c: 48 + unicodedata.decimal(chr(c)) for c in range(sys.maxunicode + 1)
            if unicodedata.category(chr(c)) == "Nd" and c > 127}


def _normalised(arr: pa.Array) -> pa.Array:
    """Text in the ASCII spelling of its digits, spaces and dashes (NFKC first).

    Full-width digits and every kind of space become ASCII through NFKC;
    dashes, apostrophes, middle dots (to ``.``), slashes and colons are mapped,
    invisible format characters (zero-width space, soft hyphen) dropped. Digits of other scripts (Arabic-Indic, ...)
    have no compatibility mapping: the few values holding them are mapped one
    by one.
    """
    t = pc.utf8_normalize(arr, form="NFKC")
    t = pc.replace_substring_regex(t, r"\p{Cf}", "")
    t = pc.replace_substring_regex(t, r"[\p{Pd}\x{2212}\x{2043}]", "-")
    t = pc.replace_substring_regex(t, r"[\x{2018}\x{2019}\x{201B}\x{2032}\x{02BC}\x{00B4}`]", "'")
    t = pc.replace_substring_regex(t, r"\p{Z}", " ")
    t = pc.replace_substring_regex(t, _MIDDLE_DOTS, ".")
    t = pc.replace_substring_regex(t, r"[\x{2044}\x{2215}\x{29F8}]", "/")
    t = pc.replace_substring_regex(t, r"[\x{2236}\x{A789}]", ":")
    return t.cast(pa.large_string())


#: Dots written between the groups of a number (middle dot, bullet, dot operator, katakana middle dot, ...).
_MIDDLE_DOTS = r"[\x{00B7}\x{2022}\x{2027}\x{2219}\x{22C5}\x{2E31}\x{30FB}]"


def _with_ascii_digits(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """The rows holding digits of other scripts, and those values with ASCII digits."""
    exotic = pc.fill_null(pc.match_substring_regex(pc.replace_substring_regex(arr, "[0-9]", ""), r"\p{Nd}"),
                          False)
    rows = np.flatnonzero(exotic.to_numpy(zero_copy_only=False))
    if not len(rows):
        return rows, pa.array([], type=pa.large_string())
    table = _digit_table()
    mapped = [v.translate(table) for v in arr.take(pa.array(rows)).to_pylist()]  # these values only (rare)
    return rows, pa.array(mapped, type=pa.large_string())




_BLOCK = 1 << 24  # bytes of text scanned at once
_ANCHORS_AT_ONCE = 1 << 19  # anchors checked at once (a matrix of 34 bytes each)


def rows_containing(col: pa.ChunkedArray, needle: bytes) -> np.ndarray:
    """Positions of the values of a ``large_string`` column containing ``needle``.

    A superset: a match may straddle two values (the caller checks the values
    found). A vectorised byte scan of the Arrow data buffers, in blocks of
    16 MiB: no Python string per value.
    """
    k = len(needle)
    found = [np.zeros(0, dtype=np.int64)]
    first_row = 0
    for chunk in col.chunks:
        n = len(chunk)
        bufs = chunk.buffers()
        if n and bufs[2] is not None:
            offsets = np.frombuffer(bufs[1], dtype=np.int64)[chunk.offset: chunk.offset + n + 1]
            data = np.frombuffer(bufs[2], dtype=np.uint8)
            lo, hi = int(offsets[0]), int(offsets[-1])
            for b0 in range(lo, hi - k + 1, _BLOCK):
                d = data[b0: min(hi, b0 + _BLOCK + k - 1)]
                m = d[: len(d) - k + 1] == needle[0]
                for j in range(1, k):
                    m &= d[j: len(d) - k + 1 + j] == needle[j]
                hits = np.flatnonzero(m) + b0
                if len(hits):
                    found.append(np.searchsorted(offsets, hits, side="right") - 1 + first_row)
        first_row += n
    rows = np.concatenate(found)
    if len(rows) > 1:
        rows.sort()
        rows = rows[np.r_[True, rows[1:] != rows[:-1]]]
    return rows


#: A column name fit for a message: printable ASCII and Latin letters (Swiss exports' headers), at most 100.
_PLAIN_NAME = re.compile(r"[\x20-\x7e\u00a0-\u024f\u1e00-\u1eff]{0,100}")
_NAMES_SHOWN = 30


def readable_columns(columns) -> str | None:
    """The column names for a message, or None when they must not be shown.

    A header read in the wrong encoding (a UTF-8 file read as UTF-16 gives
    CJK characters) is the file's bytes in disguise: the AHV numbers of its
    rows come back when the text is encoded again, and :func:`looks_like_ahv`
    cannot see them. So names are shown only when every one of them is plain
    text: printable ASCII or Latin letters (no other scripts, no control
    characters), at most 100 characters, and none holding an AHV number.
    Otherwise none is shown. At most 30 names are listed.

    Examples
    --------
    >>> readable_columns(["AHV_NR", "Eintritt", "Genève"])
    "['AHV_NR', 'Eintritt', 'Genève']"
    >>> readable_columns(["\u6861\u3b76"]) is None, readable_columns(["x", "AHV 7561234567897"]) is None
    (True, True)
    """
    names = [str(c) for c in columns]
    if not all(_PLAIN_NAME.fullmatch(n) for n in names) or looks_like_ahv(pd.Series(names, dtype="str")).any():
        return None
    more = f" and {len(names) - _NAMES_SHOWN:,} more" if len(names) > _NAMES_SHOWN else ""
    return f"{names[:_NAMES_SHOWN]}{more}"


#: A secret's file (a key) may be read by its owner and the deployment's group, written by its owner only.
SECRET_MODE_REFUSED = 0o027


def read_secret_file(path: str | Path, what: str, harm: str) -> bytes:
    """The bytes of a key file (surrounding whitespace removed), unless others may read or replace it.

    ``what`` names the file in the message ("signing key file"), ``harm`` says what a reader could do
    ("sign a model the nightly run would load"). :class:`FileNotFoundError` and other :class:`OSError`
    are left to the caller, whose message says how to create the key.

    The file must be a regular file (a named pipe would block the nightly run forever while it holds
    the run lock) owned by the account reading it or by root, in folders (the named one and, through a
    link, the real one) that only that account or root may change: whoever may replace the file may
    sign a model, and a signed model of the old format is unpickled (code).

    Raises
    ------
    KeyFileError
        Everyone may read the file, others than its owner may write it, it is owned by another account,
        it lies in a folder others may change, or it is not a regular file (exit 2), naming the fix.
    """
    data, st = read_regular(path, lambda mode: KeyFileError(
        f"{what} {path} is {file_kind(mode)}, not a regular file; give the path of the file that holds the key"))
    data, mode = data.strip(), stat.S_IMODE(st.st_mode)
    _refuse_foreign_key_file(Path(path), st, what, harm)
    if mode & SECRET_MODE_REFUSED:
        raise KeyFileError(
            f"{what} {path} has mode {mode:04o}: "
            + (f"anyone on this machine can read it and {harm}" if mode & 0o004
               else "others than its owner can replace it")
            + f"; make it readable only by the service account (`chmod 600 {path}`, or 640 for the deployment's "
            "group) and create a new key if it may have been read")
    return data


def _trusted_owner(uid: int) -> bool:
    """Whether ``uid`` is the account running iizrisk or root (who may change anything anyway)."""
    return not hasattr(os, "geteuid") or uid in (os.geteuid(), 0)


def _refuse_foreign_key_file(path: Path, st: os.stat_result, what: str, harm: str) -> None:
    """Refuse a key file another account owns or may replace through its folder (see :func:`read_secret_file`)."""
    if not _trusted_owner(st.st_uid):
        raise KeyFileError(f"{what} {path} belongs to another account (uid {st.st_uid}), which could replace it "
                           f"and {harm}; give the file to the service account (`chown` it) or create a new key")
    folders = dict.fromkeys([path.absolute().parent, path.resolve().parent])  # the named folder and the real one
    for folder in folders:
        try:
            fst = os.stat(folder)
        except OSError:
            continue  # the file was read through it: a folder that cannot be inspected is left alone
        sticky = bool(fst.st_mode & stat.S_ISVTX)  # like /tmp: nobody may replace another's file
        if not _trusted_owner(fst.st_uid) or (stat.S_IMODE(fst.st_mode) & 0o022 and not sticky):
            who = (f"belongs to another account (uid {fst.st_uid})" if not _trusted_owner(fst.st_uid)
                   else f"has mode {stat.S_IMODE(fst.st_mode):04o}: others can change it")
            raise KeyFileError(f"{what} {path} lies in the folder {folder}, which {who}: they could replace the "
                               f"key and {harm}; keep key files in a folder only the service account may change "
                               f"(`chmod 700 {folder}`)")


def load_key(key_file: str | Path | None = None, *, env: str | None = DEFAULT_KEY_ENV) -> bytes:
    """Read the secret key from a file, or else from an environment variable.

    Raises
    ------
    KeyFileError
        When the file is missing or unreadable, when neither source is given,
        or when the key is shorter than :data:`MIN_KEY_BYTES` bytes.
    """
    if key_file is not None:
        path = Path(key_file)
        try:
            key = read_secret_file(path, "key file", "recover the AHV number behind every pseudonym")
        except FileNotFoundError as exc:
            raise KeyFileError(
                f"key file {path} does not exist; create it with a random secret shared by the "
                f"institutions (e.g. `(umask 077; python -c \"import secrets; print(secrets.token_hex(32))\" > {path})`)"
            ) from exc
        except OSError as exc:
            raise KeyFileError(f"key file {path} cannot be read: {exc.strerror}") from exc
        origin = f"key file {path}"
    elif env and os.environ.get(env):
        key = os.environ[env].encode("utf-8").strip()
        origin = f"environment variable {env}"
    else:
        raise KeyFileError(
            f"no key: pass a key file or set the environment variable {env} "
            "(a key is never accepted as a command-line argument)"
        )
    return _checked_key(key, origin)


def _checked_key(key, origin: str = "the key") -> bytes:
    """``key`` as bytes, refused (:class:`KeyFileError`, never echoing it) unless bytes of at least
    :data:`MIN_KEY_BYTES`: with a short key every AHV number's pseudonym can be found by trying them all."""
    if not isinstance(key, bytes | bytearray | memoryview):
        raise KeyFileError(f"{origin} must be bytes, got a {type(key).__name__}; read it with "
                           "iizrisk.load_key(key_file) (a key file or the environment variable "
                           f"{DEFAULT_KEY_ENV})")
    key = bytes(key)
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"{origin} holds {len(key)} bytes; a key needs at least {MIN_KEY_BYTES} (a short key "
                           "lets anyone recover the AHV numbers by trying them all); create one with "
                           "`python -c \"import secrets; print(secrets.token_hex(32))\"` and read it with "
                           "iizrisk.load_key")
    return key


def pseudonymise_values(values, key: bytes) -> np.ndarray:
    """HMAC-SHA-256 hex pseudonyms of AHV numbers (normalised first).

    Each distinct number is hashed once. Values must be valid AHV numbers;
    use :func:`pseudonymise` for a table with invalid rows reported.

    Raises
    ------
    KeyFileError
        When ``key`` is not bytes or is shorter than :data:`MIN_KEY_BYTES` bytes.
    """
    key = _checked_key(key)
    norm = normalise_ahv(values)
    codes, uniques = pd.factorize(norm)
    if (codes < 0).any():
        raise PseudonymisationError("missing AHV numbers cannot be pseudonymised")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in _pad(key)))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in _pad(key)))
    hashed = np.empty(len(uniques), dtype=object)
    for i, u in enumerate(uniques.tolist()):  # one hash per distinct person, not per row
        h = inner.copy()
        h.update(u.encode("ascii"))
        o = outer.copy()
        o.update(h.digest())
        hashed[i] = o.hexdigest()
    return hashed[codes]


def _pad(key: bytes) -> bytes:
    """The HMAC block key (RFC 2104): long keys hashed, then zero-padded to 64 bytes."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    return key.ljust(64, b"\0")


@dataclass(frozen=True)
class PseudonymisationReport:
    """Rows whose identifier could not be pseudonymised (row numbers only, never values)."""

    rows_in: int
    invalid_rows: np.ndarray  # 1-based data row numbers
    missing_rows: np.ndarray

    @property
    def ok(self) -> bool:
        return len(self.invalid_rows) == 0 and len(self.missing_rows) == 0

    def to_text(self, source: str = "input", column: str = "id") -> str:
        lines = [f"{source}: {self.rows_in:,} rows"]
        for label, rows in [("empty", self.missing_rows), ("not a valid AHV number", self.invalid_rows)]:
            if len(rows):
                first = ", ".join(str(int(r)) for r in rows[:10])
                more = f" and {len(rows) - 10:,} more" if len(rows) > 10 else ""
                lines.append(
                    f"  column {column!r}: {len(rows):,} rows {label} (rows {first}{more}); "
                    "fix the numbers at the source (13 digits, 756 prefix, EAN-13 check digit)"
                )
        return "\n".join(lines)


def pseudonymise(
    df: pd.DataFrame, id_column: str, key: bytes, *, out_column: str = "person_id"
) -> tuple[pd.DataFrame, PseudonymisationReport]:
    """Replace the AHV column by pseudonyms; rows with invalid numbers are reported, not hashed.

    Returns the table without the raw column and without the invalid rows
    (the pseudonym column first), and a report listing the invalid rows.

    Raises
    ------
    KeyFileError
        When ``key`` is not bytes or is shorter than :data:`MIN_KEY_BYTES` bytes (as :func:`load_key`).
    """
    key = _checked_key(key)
    if id_column not in df.columns:
        names = readable_columns(df.columns)
        column = "(name withheld: an AHV number)" if looks_like_ahv([str(id_column)]).any() else repr(id_column)
        raise PseudonymisationError(
            f"column {column} not found; columns are {names}" if names is not None else
            f"column {column} not found; the column names do not look like plain text (withheld: "
            "a header read in the wrong encoding can hold an AHV number); check the file's encoding"
        )
    raw = df[id_column]
    missing = raw.isna().to_numpy() | (raw.astype("str").str.strip() == "").fillna(True).to_numpy()
    valid = is_valid_ahv(raw) & ~missing
    invalid = ~valid & ~missing
    rows = np.arange(1, len(df) + 1)
    report = PseudonymisationReport(len(df), rows[invalid], rows[missing])
    out = df.loc[valid].drop(columns=[id_column])
    out.insert(0, out_column, pseudonymise_values(raw[valid], key))
    logger.info("pseudonymised %d of %d rows (%d invalid, %d empty)", int(valid.sum()), len(df),
                int(invalid.sum()), int(missing.sum()))
    return out.reset_index(drop=True), report
