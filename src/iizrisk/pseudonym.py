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
>>> is_valid_ahv(["756.1234.5678.97", "7561234567897", "756.1234.5678.90", None]).tolist()
[True, True, False, False]
>>> key = b"a demo key that is long enough!!"
>>> p = pseudonymise_values(["756.1234.5678.97", "7561234567897"], key)
>>> p[0] == p[1], len(p[0])
(True, 64)
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import KeyFileError, PseudonymisationError

__all__ = [
    "DEFAULT_KEY_ENV",
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
    """Strip white space and the dots of the printed form: ``756.1234.5678.97`` -> ``7561234567897``."""
    s = pd.Series(values, dtype="str") if not isinstance(values, pd.Series) else values.astype("str")
    return s.str.strip().str.replace(".", "", regex=False).str.replace(" ", "", regex=False)


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


def looks_like_ahv(values) -> np.ndarray:
    """Boolean mask of values holding an AHV number with a valid check digit.

    A value is caught when it is an AHV number (dots and white space allowed)
    or when it contains one inside text (``"Rückruf, AHV 756.1234.5678.97"``).
    Cheap on long columns: only values containing ``756`` are examined further.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        on_categories = looks_like_ahv(pd.Series(s.cat.categories.astype("str")))
        codes = s.cat.codes.to_numpy()
        return np.where(codes >= 0, np.r_[on_categories, False][codes], False)
    if s.dtype.kind in "iuf" or pd.api.types.is_extension_array_dtype(s) and s.dtype.kind in "iuf":
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        cand = (v >= 7560000000000) & (v <= 7569999999999) & (v % 1 == 0)
        out = np.zeros(len(s), dtype=bool)
        if cand.any():
            out[cand] = is_valid_ahv(pd.Series(v[cand].astype(np.int64).astype(str)))
        return out
    if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
        return np.zeros(len(s), dtype=bool)
    s = s.astype("str")
    out = np.zeros(len(s), dtype=bool)
    # a byte scan of the Arrow buffers (the str dtype is Arrow-backed; every AHV number contains 756)
    cand = np.zeros(len(s), dtype=bool)
    cand[rows_containing(pa.chunked_array(pa.array(s.array)).cast(pa.large_string()), b"756")] = True
    if cand.any():
        # whole values, then numbers embedded in text ("Rückruf, AHV 756.1234.5678.97")
        sub = s[cand].reset_index(drop=True)  # positions as index
        hit = is_valid_ahv(sub)
        rest = np.flatnonzero(~hit)
        if len(rest):
            found = sub.iloc[rest].str.findall(_EMBEDDED).explode().dropna()
            if len(found):
                ok = is_valid_ahv(found.astype("str"))
                hit[np.unique(found.index[ok].to_numpy(dtype=np.int64))] = True
        out[np.flatnonzero(cand)] = hit
    return out


_BLOCK = 1 << 24  # bytes of text scanned at once


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


# a number standing as a word in text: not part of a longer run of letters or digits
# (a 64-character hex pseudonym can hold 13 digits in a row; those are not AHV numbers)
_EMBEDDED = r"(?<![0-9A-Za-z.])756[.\s]?\d{4}[.\s]?\d{4}[.\s]?\d{2}(?![0-9A-Za-z])"


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
            key = path.read_bytes().strip()
        except FileNotFoundError as exc:
            raise KeyFileError(
                f"key file {path} does not exist; create it with a random secret shared by the "
                f"institutions (e.g. `python -c \"import secrets; print(secrets.token_hex(32))\" > {path}`)"
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
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"{origin} holds {len(key)} bytes; a key needs at least {MIN_KEY_BYTES}")
    return key


def pseudonymise_values(values, key: bytes) -> np.ndarray:
    """HMAC-SHA-256 hex pseudonyms of AHV numbers (normalised first).

    Each distinct number is hashed once. Values must be valid AHV numbers;
    use :func:`pseudonymise` for a table with invalid rows reported.
    """
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
    """
    if id_column not in df.columns:
        raise PseudonymisationError(
            f"column {id_column!r} not found; columns are {list(df.columns)}"
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
