"""Generating a synthetic population: chunks, other institutions, export view, truth, outputs."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from .. import _time
from .._time import OPEN_END
from ..config import MAX_COUNT
from ..errors import ConfigError
from ..schema import load_schema
from . import _engine as E
from ._params import SwissDefaults

__all__ = ["SyntheticPopulation", "generate", "load"]

logger = logging.getLogger("iizrisk")

_CANTONS: tuple[str, ...] = tuple(load_schema("spells").field("canton").enum or ())
_EXIT_REASONS: tuple[str, ...] = tuple(load_schema("spells").field("exit_reason").enum or ())
_IV_MEASURES: tuple[str, ...] = tuple(load_schema("spells_iv").field("iv_measure").enum or ())
_CASE_PREFIX = {"ALV": "RAV", "IV": "IV", "SH": "SD", "BB": "CMBB", "BSLB": "BSLB", "MIG": "INT",
                "UV": "UV", "KTG": "KTG"}
_MAX_CHUNK = 200_000
_MIN_CHUNK = 4_096
#: Smallest true effect (``generate(effect=...)``, ``iizrisk synth --effect``): -1 is a hazard ratio of 2, an
#: assessment that doubles the hazards of new spells. Far below it the hazards overflow.
MIN_EFFECT = -1.0


# ----------------------------------------------------------------------------- strings
def _hex_words(words: np.ndarray) -> np.ndarray:
    """uint64 matrix (n, m) -> (n, 16 m) uint8 matrix of lowercase hex digits (big-endian)."""
    words = np.atleast_2d(words)
    n, m = words.shape
    b = words.astype(">u8").view(np.uint8).reshape(n, 8 * m)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((n, 16 * m), dtype=np.uint8)
    out[:, 0::2] = digits[b >> 4]
    out[:, 1::2] = digits[b & 15]
    return out


def _arrow_strings(chars: np.ndarray) -> pa.StringArray:
    """Fixed-width ASCII matrix (n, w) -> Arrow string array, without Python objects."""
    n, w = chars.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64) if n else np.zeros(1, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars)))


def _str_series(arr: pa.Array) -> pd.Series:
    return pd.Series(arr.cast(pa.string()), dtype="str") if len(arr) else pd.Series([], dtype="str")


def pseudonym_words(seed: int, pids: np.ndarray) -> np.ndarray:
    """Four 64-bit words per person: the 256-bit pseudonym (like an HMAC-SHA-256 output)."""
    key = E.person_keys(int(seed) ^ 0x5EED_F00D, pids)
    return np.stack([E.bits(key, E.K_PERSON + 500 + j, 0) for j in range(4)], axis=1)


# ----------------------------------------------------------------------- other institutions
def _merge_rows(r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Merge overlapping or touching rows of one person at one institution (the last end's reason)."""
    n = len(r["who"])
    if n == 0:
        return r
    order = np.lexsort((r["end"], r["start"], r["inst"], r["who"]))
    r = {k: v[order] for k, v in r.items()}
    g = r["who"] * 16 + r["inst"]
    new_g = np.ones(n, dtype=bool)
    new_g[1:] = g[1:] != g[:-1]
    rank = (np.cumsum(new_g) - 1).astype(np.int64) << 33
    end = r["end"].astype(np.int64) - int(np.iinfo(np.int32).min)
    run = np.maximum.accumulate(rank + end) - rank + int(np.iinfo(np.int32).min)
    new = new_g.copy()
    new[1:] |= r["start"][1:] > run[:-1] + 1
    firsts = np.flatnonzero(new)
    lasts = np.r_[firsts[1:], n] - 1
    sid = np.cumsum(new) - 1
    holds = r["end"] == run[lasts][sid]
    pick = np.maximum.reduceat(np.where(holds, np.arange(n), -1), firsts)
    out = {k: v[firsts] for k, v in r.items()}
    out["end"] = run[lasts]
    out["reason"] = r["reason"][pick]
    return out


def _choice(u: np.ndarray, probs) -> np.ndarray:
    return np.minimum(np.searchsorted(np.cumsum(probs), u, side="right"), len(probs) - 1).astype(np.int8)


def _overlays(pop: E.Persons, core: dict[str, np.ndarray], p: SwissDefaults, horizon: int) -> dict:
    """Spells at BSLB, MIG, KTG and UV (none of them changes the ALV/IV/SH process)."""
    n = len(pop)
    lim_day = np.minimum(pop.L1, horizon + 1)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("who", "inst", "start", "end", "reason", "k")}

    def add(who, inst, start, end, reason, k):
        rows["who"].append(who)
        rows["inst"].append(np.full(len(who), inst, dtype=np.int8))
        rows["start"].append(start.astype(np.int64))
        rows["end"].append(end.astype(np.int64))
        rows["reason"].append(reason.astype(np.int8))
        rows["k"].append(np.broadcast_to(np.asarray(k, dtype=np.int32), (len(who),)).copy())

    def series(who, base_k, first, last, gap_months, dur_fn, inst, reasons, max_n):
        """Up to ``max_n`` consecutive spells per person between days first and last."""
        key = pop.key[who]
        prev_end = first - 1
        active = np.ones(len(who), dtype=bool)
        for j in range(max_n):
            kk = base_k + j
            start = prev_end + 1 + np.floor(E.expo(key, kk, 1) * gap_months * E.DPM).astype(np.int64)
            dur = dur_fn(key, kk)
            end = start + dur - 1
            ok = active & (start <= last)
            add(who[ok], inst, start[ok], end[ok], _choice(E.uniform(key[ok], kk, 3), reasons), kk)
            active = ok
            prev_end = end

    # career guidance in youth (from 15 to 25, not for those arriving later)
    young = np.flatnonzero(~pop.immigrant)
    if len(young):
        key = pop.key[young]
        lam = p.bslb_youth_mean * np.exp(0.3 * pop.severity[young])
        u = E.uniform(key, E.K_PERSON + 100, 0)
        # Poisson(lam) capped at 3, by inversion
        k_n = np.zeros(len(young), dtype=np.int64)
        cdf = np.exp(-lam)
        term = cdf.copy()
        for j in range(1, 4):
            k_n += u > cdf
            term = term * lam / j
            cdf = cdf + term
        dur = lambda key, kk: np.maximum(14, np.floor(E.expo(key, kk, 2) * p.bslb_duration_months * E.DPM)).astype(np.int64)  # noqa: E731
        for j in range(3):
            sel = young[k_n > j]
            if not len(sel):
                continue
            key = pop.key[sel]
            kk = E.K_PERSON + 110 + j
            span = int(10 * E.DPY)
            start = pop.L0[sel] + np.floor(E.uniform(key, kk, 1) * span).astype(np.int64)
            end = start + dur(key, kk) - 1
            add(sel, E.I_BSLB, start, end, _choice(E.uniform(key, kk, 3), (0.2, 0.6, 0, 0, 0, 0, 0, 0.2)), kk)
    # career guidance later in life
    if p.bslb_adult_rate > 0:
        who = np.arange(n)
        first = np.maximum(pop.L0, pop.birth + int(25 * E.DPY))
        series(who, E.K_PERSON + 120, first, lim_day - 1, 12.0 / p.bslb_adult_rate,
               lambda key, kk: np.maximum(14, np.floor(E.expo(key, kk, 2) * p.bslb_duration_months * E.DPM))
               .astype(np.int64), E.I_BSLB, (0.4, 0.3, 0, 0, 0, 0, 0, 0.3), 2)
    # career guidance alongside ALV
    a = np.flatnonzero(core["inst"] == E.I_ALV)
    if len(a) and p.bslb_alv_share > 0:
        who = core["who"][a]
        key, k_rows = pop.key[who], core["k"][a]
        u = _uniform_rows(key, k_rows, 70)
        take = u < p.bslb_alv_share
        who, key, k_rows, st = who[take], key[take], k_rows[take], core["start"][a][take]
        start = st + np.floor(_uniform_rows(key, k_rows, 71) * 60).astype(np.int64)
        dur_days = np.maximum(14, np.floor(-np.log(_uniform_rows(key, k_rows, 72)) * p.bslb_duration_months * E.DPM))
        add(who, E.I_BSLB, start, start + dur_days.astype(np.int64) - 1,
            _choice(_uniform_rows(key, k_rows, 73), (0.5, 0.2, 0, 0, 0, 0, 0, 0.3)), k_rows)
    # integration services on arrival
    shares = np.array([p.mig_share[x] for x in E.NATIONALITIES])
    imm = np.flatnonzero(pop.immigrant)
    if len(imm):
        key = pop.key[imm]
        take = E.uniform(key, E.K_PERSON + 130, 0) < shares[pop.nat[imm]]
        who, key = imm[take], key[take]
        start = pop.L0[who] + np.floor(E.uniform(key, E.K_PERSON + 130, 1) * 120).astype(np.int64)
        months = 3 + E.expo(key, E.K_PERSON + 130, 2) * max(p.mig_duration_months - 3, 0.1)
        end = start + np.floor(months * E.DPM).astype(np.int64) - 1
        add(who, E.I_MIG, start, end, _choice(E.uniform(key, E.K_PERSON + 130, 3),
                                              (0.35, 0.15, 0, 0, 0, 0, 0, 0.5)), E.K_PERSON + 130)
    # sickness daily allowance before IV registrations
    iv = np.flatnonzero((core["inst"] == E.I_IV) & (core["measure"] == E.M_INTEGRATION))
    if len(iv) and p.ktg_before_iv > 0:
        who, k_rows = core["who"][iv], core["k"][iv]
        key = pop.key[who]
        take = _uniform_rows(key, k_rows, 80) < p.ktg_before_iv
        who, key, k_rows, ivs = who[take], key[take], k_rows[take], core["start"][iv][take]
        start = np.maximum(pop.L0[who], ivs - 60 - np.floor(_uniform_rows(key, k_rows, 81) * 300).astype(np.int64))
        end = np.maximum(start, ivs + np.floor(_uniform_rows(key, k_rows, 82) * 90).astype(np.int64) - 1)
        add(who, E.I_KTG, start, end, np.full(len(who), E.R_TRANS), k_rows)
    # free-standing sickness and accident allowances
    who = np.arange(n)
    for rate, inst, base, mean, reasons in (
        (p.ktg_rate, E.I_KTG, E.K_PERSON + 140, 4.0, (0.75, 0, 0, 0, 0, 0, 0, 0.25)),
        (p.uv_rate, E.I_UV, E.K_PERSON + 150, 2.5, (0.9, 0, 0, 0, 0, 0, 0, 0.1)),
    ):
        if rate > 0:
            series(who, base, pop.L0, lim_day - 1, 12.0 / rate,
                   lambda key, kk, mean=mean: (15 + np.floor(E.expo(key, kk, 2) * mean * E.DPM)).astype(np.int64),
                   inst, reasons, 2)
    if not rows["who"]:
        return {k: np.zeros(0, dtype=np.int64) for k in ("who", "inst", "start", "end", "reason", "k")}
    r = {k: np.concatenate(v) for k, v in rows.items()}
    # nothing before the life at risk; ends at the limit become open or take the life reason
    lo = pop.L0[r["who"]]
    r["start"] = np.maximum(r["start"], lo)
    keep = r["start"] < lim_day[r["who"]]
    r = {k: v[keep] for k, v in r.items()}
    lim = lim_day[r["who"]]
    hit = r["end"] >= lim - 1
    open_ = hit & (pop.L1[r["who"]] > horizon)
    life = pop.life_end[r["who"]]
    life_reason = np.where(life == E.L_AGE, E.R_PENS, np.where(life == E.L_DEATH, E.R_DEATH, E.R_RELOC))
    r["reason"] = np.where(open_, E.R_OPEN, np.where(hit, life_reason, r["reason"])).astype(np.int8)
    r["end"] = np.where(open_, int(OPEN_END), np.minimum(r["end"], lim - 1))
    r = _merge_rows(r)
    r["measure"] = np.zeros(len(r["who"]), dtype=np.int8)
    r["case_start"] = r["start"].copy()
    return r


def _uniform_rows(key: np.ndarray, k: np.ndarray, stream: int | np.ndarray) -> np.ndarray:
    """Uniform draws keyed by a per-row episode index ``k`` (vector); ``stream`` one or one per row."""
    c = (k.astype(np.uint64) << np.uint64(24)) + np.uint64(stream * 0x51ED27 + 0xABCDEF)
    h = E._mix(key ^ E._mix(c))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / (1 << 53))


# ----------------------------------------------------------------------------- truth
def _timeline_of(rows: dict[str, np.ndarray], who: np.ndarray):
    """A merged Timeline (iizrisk.spells) of the rows of the persons ``who`` (person ids: ``str(who)``)."""
    from ..spells import build_timeline

    sel = np.isin(rows["who"], who)
    frame = pd.DataFrame({
        "person_id": pd.Series(rows["who"][sel].astype(str), dtype="str"),
        "institution": pd.Categorical.from_codes(rows["inst"][sel].astype(np.int16), E.INSTITUTIONS),
        "start_date": _time.from_days(rows["start"][sel]),
        "end_date": _time.from_days(rows["end"][sel]),
    })
    return build_timeline(frame, institutions=E.INSTITUTIONS)


def _outcomes(rows: dict[str, np.ndarray], who: np.ndarray, as_of: np.ndarray, *, horizon_months: int = 12,
              window_months: int = 24, gap_days: int = 90, count_months: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Per (person, as-of day): the revolving-door outcome and the number of new ALV/IV/SH spells.

    Revolving door (docs/domain.md section 5, as :mod:`iizrisk.outcomes`): within
    T+1 ... T+H a new spell that is a transition or a re-entry starts, and the
    ``window_months`` ending at T+H meet the BFS definition (spells at >= 2
    institutions, >= 2 separate spells at one of them). New spells: merged ALV,
    IV or SH spells starting in T+1 ... T+``count_months``.
    """
    from ..flags import reentry_mask, transition_mask
    from ..indicators import window_spell_counts

    if not len(who):
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    tl = _timeline_of(rows, who)
    codes = tl.person_ids.get_indexer(pd.Index(np.asarray(who).astype(str)))
    as_of = np.asarray(as_of, dtype=np.int64)
    h_end = _time.add_months(as_of, horizon_months).astype(np.int64)
    new_kind = transition_mask(tl, gap_days=gap_days) | reentry_mask(tl)
    # any new transition/re-entry spell in (T, T+H]: per spell, compare with its person's window
    pos = np.full(tl.n_persons, -1, dtype=np.int64)
    pos[codes[codes >= 0]] = np.flatnonzero(codes >= 0)
    sp = pos[tl.person]
    t_sp = np.where(sp >= 0, as_of[np.maximum(sp, 0)], 0)
    h_sp = np.where(sp >= 0, h_end[np.maximum(sp, 0)], 0)
    hit = new_kind & (sp >= 0) & (tl.start > t_sp) & (tl.start <= h_sp)
    any_new = np.bincount(sp[hit], minlength=len(who)) > 0
    w0 = _time.window_start(h_end, window_months).astype(np.int64)
    counts = window_spell_counts(tl, np.maximum(codes, 0), w0, h_end, systems=tl.institutions, overlap=True)
    rd_window = ((counts > 0).sum(axis=1) >= 2) & (counts.max(axis=1) >= 2) & (codes >= 0)
    c_end = _time.add_months(as_of, count_months).astype(np.int64)
    core = window_spell_counts(tl, np.maximum(codes, 0), as_of + 1, c_end, systems=("ALV", "IV", "SH"),
                               overlap=False).sum(axis=1)
    return any_new & rd_window, np.where(codes >= 0, core, 0)


# ------------------------------------------------------------------------ one chunk
@dataclass
class _Chunk:
    rows: dict[str, np.ndarray]  # exported rows (chunk-local who)
    persons: E.Persons  # output persons, in pid order
    truth: dict[str, np.ndarray]
    n_at_risk: int
    iterations: int
    sample: dict[str, np.ndarray] = field(default_factory=dict)  # the people at risk simulated twice


def _export_view(rows: dict[str, np.ndarray], pop: E.Persons, p: SwissDefaults, w0: int, w1: int) -> dict:
    """The rows as exported on day w1: known rows overlapping [w0, w1], ends known or open."""
    key = pop.key[rows["who"]]
    k = rows["k"]
    mean = np.array([p.recorded_delay_days.get(i, 10) for i in E.INSTITUTIONS], dtype=np.float64)[rows["inst"]]
    salt = rows["inst"].astype(np.int64) * 7 + rows["measure"].astype(np.int64)
    d_s = np.floor(-np.log(_uniform_rows(key, k, 90 + salt)) * mean).astype(np.int64)
    d_e = np.floor(-np.log(_uniform_rows(key, k, 200 + salt)) * mean).astype(np.int64)
    start, end = rows["start"], rows["end"]
    is_open = end == int(OPEN_END)
    known_start = start + d_s
    known_end = np.where(is_open, np.iinfo(np.int64).max // 4, end + d_e)
    keep = (known_start <= w1) & (is_open | (end >= w0))
    still_open = is_open | (end > w1) | (known_end > w1)
    out = {kk: v[keep] for kk, v in rows.items()}
    so = still_open[keep]
    out["end"] = np.where(so, int(OPEN_END), out["end"])
    reason = np.where(so, E.R_OPEN, out["reason"])
    unknown = _uniform_rows(key[keep], k[keep], 300 + salt[keep]) < p.unknown_exit_share
    out["reason"] = np.where(~so & unknown, E.R_UNKNOWN, reason).astype(np.int8)
    out["recorded"] = np.where(so, known_start[keep], known_end[keep])
    return out


_SAMPLE_KEYS = ("who", "day", "effect", "rd", "rd_cf", "new", "new_cf")


def _at_risk_sample(pop: E.Persons, core: dict[str, np.ndarray], out_who: np.ndarray, assess_day: np.ndarray,
                    share: float, w0: int, w1: int) -> tuple[np.ndarray, np.ndarray]:
    """A random ``share`` of the output persons, each at one month's last day in [w0, w1] on which
    they are registered at ALV, IV or SH and not yet assessed: (persons, days)."""
    month_ends = _time.month_last_day(np.arange(int(_time.month_index(w0)[()]), int(_time.month_index(w1)[()]) + 1))
    month_ends = month_ends[(month_ends >= w0) & (month_ends <= w1)].astype(np.int64)
    none = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if share <= 0 or not len(out_who) or not len(month_ends):
        return none
    cand = out_who[E.uniform(pop.key[out_who], E.K_PERSON + 600, 0) < share]
    sel = np.isin(core["who"], cand) & np.isin(core["inst"], (E.I_ALV, E.I_IV, E.I_SH))
    who, start, end = core["who"][sel], core["start"][sel], core["end"][sel]
    lo = np.searchsorted(month_ends, start, side="left")
    hi = np.searchsorted(month_ends, end, side="right")
    k = np.maximum(hi - lo, 0)
    row = np.repeat(np.arange(len(who)), k)
    j = lo[row] + (np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k))
    pair = np.unique(who[row] * len(month_ends) + j)
    pw, pj = pair // len(month_ends), pair % len(month_ends)
    a = assess_day[pw]
    ok = (a < 0) | (a > month_ends[pj])
    pw, pj = pw[ok], pj[ok]
    if not len(pw):
        return none
    u = _uniform_rows(pop.key[pw], pj.astype(np.int64) + E.K_PERSON + 610, 1)
    order = np.lexsort((u, pw))
    first = np.r_[True, pw[order][1:] != pw[order][:-1]]
    pick = order[first]
    return pw[pick], month_ends[pj[pick]]


def _situation(core: dict[str, np.ndarray], who: np.ndarray, day: np.ndarray):
    """In an IV process, months of social assistance, ALV/IV/SH spells started so far: on ``day``."""
    pos = np.full(int(core["who"].max()) + 1 if len(core["who"]) else 1, -1, dtype=np.int64)
    pos[who] = np.arange(len(who))
    r = pos[core["who"]] if len(core["who"]) else np.zeros(0, dtype=np.int64)
    sel = r >= 0
    r, inst, start, end = r[sel], core["inst"][sel], core["start"][sel], core["end"][sel]
    measure = core["measure"][sel]
    d = day[r]
    covers = (start <= d) & (end >= d)
    in_iv = np.bincount(r[covers & (inst == E.I_IV)], minlength=len(who)) > 0
    sh = covers & (inst == E.I_SH)
    sh_months = np.zeros(len(who))
    np.maximum.at(sh_months, r[sh], (d[sh] - start[sh]) / E.DPM)
    new = (start <= d) & ((inst == E.I_ALV) | (inst == E.I_SH) | ((inst == E.I_IV) & (measure == E.M_INTEGRATION)))
    return in_iv, sh_months, np.bincount(r[new], minlength=len(who))


def _simulate_chunk(pids: np.ndarray, p: SwissDefaults, *, seed: int, w0: int, w1: int, horizon: int,
                    hr: float, canton: str | None, heterogeneous: bool = False,
                    effect_sample: float = 0.0) -> _Chunk:
    pop = E.make_persons(pids, p, seed=seed, first_day=w0, last_day=w1, cantons=_CANTONS, canton=canton)
    effect_days = p.effect_months * E.DPM
    core = E.simulate_core(pop, p, horizon=horizon, win0=w0, win1=w1, hr=hr, effect_days=effect_days,
                           heterogeneous=heterogeneous)
    over = _overlays(pop, core.records, p, horizon)
    rows = {k: np.concatenate([core.records[k], over[k]]) for k in core.records}
    view = _export_view(rows, pop, p, w0, w1)
    out_who = np.unique(view["who"])
    # truth of the assessed (among the output persons)
    assessed = out_who[core.assess_day[out_who] >= 0]
    t_a = core.assess_day[assessed]
    rd, n_new = _outcomes(rows, assessed, t_a)
    if hr != 1.0 and len(assessed):
        sub = pop.take(assessed)
        cf = E.simulate_core(sub, p, horizon=horizon, win0=w0, win1=w1, hr=1.0, effect_days=effect_days)
        if not np.array_equal(cf.assess_day, t_a):  # pragma: no cover - would be a bug in the engine
            raise RuntimeError("counterfactual run diverged before the assessment")
        cf_over = _overlays(sub, cf.records, p, horizon)
        cf_rows = {k: np.concatenate([cf.records[k], cf_over[k]]) for k in cf.records}
        rd_cf, n_new_cf = _outcomes(cf_rows, np.arange(len(assessed)), t_a)
    else:
        rd_cf, n_new_cf = rd.copy(), n_new.copy()
    # people at risk, not (yet) assessed, simulated a second time with an assessment on a sampled day
    s_who, s_day = _at_risk_sample(pop, core.records, out_who, core.assess_day, effect_sample, w0, w1)
    in_iv, sh_months, n_core = _situation(core.records, s_who, s_day)
    s_eff = E.individual_effect(p, round(1.0 - hr, 12), heterogeneous, pop.severity[s_who], in_iv, sh_months, n_core)
    s_rd_cf, s_new_cf = _outcomes(rows, s_who, s_day)
    if hr != 1.0 and len(s_who):
        sub = pop.take(s_who)
        tw = E.simulate_core(sub, p, horizon=horizon, win0=w0, win1=w1, hr=hr, effect_days=effect_days,
                             forced_day=s_day, forced_effect=s_eff)
        tw_over = _overlays(sub, tw.records, p, horizon)
        tw_rows = {k: np.concatenate([tw.records[k], tw_over[k]]) for k in tw.records}
        s_rd, s_new = _outcomes(tw_rows, np.arange(len(s_who)), s_day)
    else:
        s_rd, s_new = s_rd_cf.copy(), s_new_cf.copy()
    # keep output persons only, renumbered 0..n-1 in pid order
    remap = np.full(len(pop), -1, dtype=np.int64)
    remap[out_who] = np.arange(len(out_who))
    view["who"] = remap[view["who"]]
    truth = {
        "who": remap[assessed],
        "assess_day": t_a,
        "assess_inst": core.assess_inst[assessed],
        "rd": rd, "rd_cf": rd_cf, "new": n_new, "new_cf": n_new_cf,
        "effect": (core.assess_effect if core.assess_effect is not None else np.zeros(len(pop)))[assessed],
    }
    sample = {"who": remap[s_who], "day": s_day, "effect": s_eff, "rd": s_rd, "rd_cf": s_rd_cf, "new": s_new,
              "new_cf": s_new_cf}
    return _Chunk(rows=view, persons=pop.take(out_who), truth=truth, n_at_risk=len(pids),
                  iterations=core.iterations, sample=sample)


def _truncate(ch: _Chunk, need: int) -> _Chunk:
    if len(ch.persons) <= need:
        return ch
    keep_rows = ch.rows["who"] < need
    keep_truth = ch.truth["who"] < need
    keep_sample = ch.sample["who"] < need
    last_pid = ch.persons.pid[need - 1]
    return _Chunk(rows={k: v[keep_rows] for k, v in ch.rows.items()},
                  persons=ch.persons.take(np.arange(need)),
                  truth={k: v[keep_truth] for k, v in ch.truth.items()},
                  n_at_risk=int(last_pid - ch.persons.pid[0] + 1) if need else 0,
                  iterations=ch.iterations, sample={k: v[keep_sample] for k, v in ch.sample.items()})


# ---------------------------------------------------------------------- the population
@dataclass
class SyntheticPopulation:
    """A generated population: canonical spells, interventions, truth and the parameters.

    Attributes
    ----------
    spells : DataFrame
        Canonical spells (``data/schemas/spells.json`` plus ``iv_measure``),
        as exported on ``end``: rows overlapping [start, end] whose start was
        recorded by then; an end not yet recorded (or after ``end``) is empty.
    interventions : DataFrame
        Joint assessments (``data/schemas/interventions.json``).
    truth : DataFrame
        One row per person: latent severity, immigration, and for the assessed
        the assessment date, the effect used and the outcomes with and without
        it (see :mod:`iizrisk.synth`).
    params : SwissDefaults
    meta : dict
        ``n_persons``, ``start``, ``end``, ``seed``, ``effect``, ``hazard_ratio``,
        ``canton``, ``n_at_risk`` (people simulated), ``version``.
    """

    spells: pd.DataFrame
    interventions: pd.DataFrame
    truth: pd.DataFrame
    params: SwissDefaults
    meta: dict = field(default_factory=dict)

    def true_att(self, outcome: str = "rd_12m") -> float:
        """The true average effect of the assessment on the assessed (ATT) for an outcome.

        ``outcome`` is ``"rd_12m"`` (revolving door within 12 months of the
        assessment; a difference of proportions) or ``"new_spells_24m"`` (new
        ALV/IV/SH spells within 24 months; a difference of means).
        """
        a = self.truth[self.truth["assessed"]]
        if not len(a):
            return float("nan")
        return float(a[outcome].astype(float).mean() - a[f"{outcome}_cf"].astype(float).mean())

    def to_dir(self, path: str | Path, exports: bool = False) -> Path:
        """Write ``spells.parquet``, ``interventions.parquet``, ``truth.parquet`` and ``synth.json``.

        With ``exports=True`` also ``exports/`` (institution-style CSV files with
        realistic mess) and ``iizrisk.toml`` (the deployment configuration that
        reads them). Parquet files are byte-identical for the same seed.
        """
        from ..store import make_dirs, write_parquet_atomic, write_text_atomic

        path = make_dirs(path)
        write_parquet_atomic(self.spells, path / "spells.parquet")
        write_parquet_atomic(self.interventions, path / "interventions.parquet")
        write_parquet_atomic(self.truth, path / "truth.parquet")
        meta = {**self.meta, "params": self.params.to_dict()}
        write_text_atomic(json.dumps(meta, indent=1, sort_keys=True) + "\n", path / "synth.json")
        if exports:
            from ._exports import write_exports

            write_exports(self, path)
        logger.info("synthetic population written to %s", path)
        return path

    def _repr_html_(self) -> str:
        m = self.meta
        per = self.spells.groupby("institution", observed=True).size()
        rows = "".join(f"<tr><td>{k}</td><td>{v:,}</td></tr>" for k, v in per.items())
        return (f"<b>SyntheticPopulation</b>: {m.get('n_persons', 0):,} persons, {len(self.spells):,} spells "
                f"({m.get('start')} to {m.get('end')}, seed {m.get('seed')}), "
                f"{int(self.truth['assessed'].sum()):,} assessed, effect {m.get('effect')}"
                f"<table><tr><th>institution</th><th>rows</th></tr>{rows}</table>")


def load(path: str | Path) -> SyntheticPopulation:
    """Read a population written by :meth:`SyntheticPopulation.to_dir`."""
    from ..io import read_canonical, read_canonical_table

    path = Path(path)
    meta = json.loads((path / "synth.json").read_text(encoding="utf-8"))
    params = SwissDefaults().replace({k: (tuple(v) if isinstance(v, list) else
                                          {kk: tuple(vv) if isinstance(vv, list) else vv for kk, vv in v.items()}
                                          if isinstance(v, dict) else v)
                                      for k, v in meta.pop("params").items()})
    return SyntheticPopulation(spells=read_canonical(path / "spells.parquet"),
                               interventions=read_canonical_table(path / "interventions.parquet"),
                               truth=read_canonical_table(path / "truth.parquet"), params=params, meta=meta)


def _categorical(codes: npt.ArrayLike, categories, missing=-1) -> pd.Categorical:
    codes = np.asarray(codes).astype(np.int16)
    return pd.Categorical.from_codes(np.where(codes == missing, -1, codes), categories=list(categories))


def generate(n_persons: int, start, end, *, seed: int = 0, effect: float = 0.3, canton: str | None = None,
             params: SwissDefaults | dict | None = None, heterogeneous: bool = False,
             effect_sample: float = 0.0) -> SyntheticPopulation:
    """Generate a synthetic population (see :mod:`iizrisk.synth` for the model).

    Parameters
    ----------
    n_persons : int
        Number of people in the output (0 to 10,000,000): people with at least one spell in the
        reporting period [start, end]. More people are simulated (the
        population at risk, ``meta["n_at_risk"]``); those never registered in
        the period are left out.
    start, end : date-like
        The reporting period (``'YYYY-MM-DD'``); the export is as of ``end``.
    seed : int, default 0
        Same seed, same arguments: identical population (and byte-identical files).
    effect : float, default 0.3
        True effect of a joint assessment: the relative reduction of every
        hazard of starting a new ALV, IV or SH spell during ``effect_months``
        (24) after it; the hazard ratio is ``1 - effect``. 0 means no effect,
        a negative value harm; from -1 (hazard ratio 2: an assessment that
        doubles the new spells) to 1 (prevents them).
    canton : str, optional
        Generate one canton (two-letter code) instead of Switzerland.
    params : SwissDefaults or dict, optional
        Parameters, or changes to the Swiss defaults.
    heterogeneous : bool, default False
        Make the effect vary with the person's situation on the assessment
        day: ``min(effect * het_gain * m, 1)`` with the modifier ``m`` of
        :class:`SwissDefaults` (strongest at moderate severity early in a first
        registration, near zero in an IV process or after a year of social
        assistance). The effect of each assessment is in ``truth["individual_effect"]``.
    effect_sample : float, default 0
        Share of the people in the output drawn into a random sample of people
        *at risk*: each is given one month's last day in the period on which
        they are registered at ALV, IV or SH and not (yet) assessed, and is
        simulated a second time with an assessment on that day (common random
        numbers). ``truth`` then holds both outcomes (``effect_sample``,
        ``sample_date``, ``rd_12m`` had they been assessed, ``rd_12m_cf`` as it
        happened) and ``individual_effect``.

    Returns
    -------
    SyntheticPopulation

    Examples
    --------
    >>> pop = generate(200, "2020-01-01", "2021-12-31", seed=1)
    >>> pop.spells["person_id"].nunique()
    200
    >>> pop.spells["person_id"].str.len().unique().tolist()
    [64]
    """
    if isinstance(n_persons, bool) or not isinstance(n_persons, int | np.integer) or not 0 <= n_persons <= MAX_COUNT:
        raise ConfigError(f"n_persons must be a whole number from 0 to {MAX_COUNT:,}, got {n_persons!r}")
    if isinstance(effect, bool) or not isinstance(effect, int | float | np.integer | np.floating) \
            or not MIN_EFFECT <= effect <= 1:
        raise ConfigError(f"effect must be a number from {MIN_EFFECT:g} (hazard ratio {1 - MIN_EFFECT:g}: an "
                          f"assessment that harms) to 1 (the hazard ratio is 1 - effect), got {effect!r}")
    if isinstance(effect_sample, bool) or not 0 <= float(effect_sample) <= 1:
        raise ConfigError(f"effect_sample must be a share between 0 and 1, got {effect_sample!r}")
    if canton is not None and canton not in _CANTONS:
        raise ConfigError(f"canton {canton!r} is not a two-letter canton code ({', '.join(_CANTONS)})")
    p = params if isinstance(params, SwissDefaults) else SwissDefaults().replace(params or {})
    p.check()
    w0, w1 = _time.day(start), _time.day(end)
    if w1 < w0:
        raise ConfigError(f"end {end} lies before start {start}")
    horizon = int(_time.add_months(w1, p.follow_up_months))
    hr = 1.0 - float(effect)
    t0 = time.perf_counter()
    chunks: list[_Chunk] = []
    have, next_pid, simulated = 0, 0, 0
    rate = 0.5  # output persons per person at risk, refined after each chunk
    while have < n_persons:
        need = n_persons - have
        size = int(min(_MAX_CHUNK, max(_MIN_CHUNK, need / max(rate, 0.02) * 1.05)))
        pids = np.arange(next_pid, next_pid + size, dtype=np.int64)
        ch = _simulate_chunk(pids, p, seed=seed, w0=w0, w1=w1, horizon=horizon, hr=hr, canton=canton,
                             heterogeneous=bool(heterogeneous), effect_sample=float(effect_sample))
        simulated += size
        next_pid += size
        got = len(ch.persons)
        rate = max((have + got) / simulated, 1e-3)
        ch = _truncate(ch, need)
        chunks.append(ch)
        have += len(ch.persons)
        logger.info("synth: %d of %d persons (%d simulated, %d loop steps)", have, n_persons, simulated,
                    ch.iterations)
    pop = _assemble(chunks, p, seed=seed, w0=w0, w1=w1, hr=hr, effect=float(effect), canton=canton)
    pop.meta["heterogeneous"] = bool(heterogeneous)
    pop.meta["effect_sample"] = float(effect_sample)
    pop.meta["n_at_risk"] = int(sum(c.n_at_risk for c in chunks))
    logger.info("synth: %d persons, %d spell rows, %d assessed in %.1f s", n_persons, len(pop.spells),
                int(pop.truth["assessed"].sum()), time.perf_counter() - t0)
    return pop


def _assemble(chunks: list[_Chunk], p: SwissDefaults, *, seed: int, w0: int, w1: int, hr: float,
              effect: float, canton: str | None) -> SyntheticPopulation:
    offs = np.cumsum([0] + [len(c.persons) for c in chunks])
    n = int(offs[-1])
    rows = {k: np.concatenate([c.rows[k] + (offs[i] if k == "who" else 0) for i, c in enumerate(chunks)])
            if chunks else np.zeros(0, dtype=np.int64) for k in (chunks[0].rows if chunks else
                                                                   ("who", "inst", "start", "end", "reason",
                                                                    "k", "measure", "case_start", "recorded"))}
    pers = {k: np.concatenate([getattr(c.persons, k) for c in chunks]) if chunks else np.zeros(0)
            for k in E.Persons.__dataclass_fields__}
    truth = {k: np.concatenate([c.truth[k] + (offs[i] if k == "who" else 0) for i, c in enumerate(chunks)])
             if chunks else np.zeros(0, dtype=np.int64) for k in ("who", "assess_day", "assess_inst", "rd",
                                                                   "rd_cf", "new", "new_cf", "effect")}
    samp = {k: np.concatenate([c.sample[k] + (offs[i] if k == "who" else 0) for i, c in enumerate(chunks)])
            if chunks else np.zeros(0, dtype=np.int64) for k in _SAMPLE_KEYS}
    words = pseudonym_words(seed, pers["pid"].astype(np.int64)) if n else np.zeros((0, 4), dtype=np.uint64)
    ids = _arrow_strings(_hex_words(words)) if n else pa.array([], pa.large_string())

    # spells, sorted by pseudonym, start, institution
    who = rows["who"]
    rank = _rank(words)
    order = np.lexsort((rows["measure"], rows["inst"], rows["start"], rank[who]))
    rows = {k: v[order] for k, v in rows.items()}
    who = rows["who"]
    case = _case_ids(pers["key"][who], rows["inst"], rows["case_start"])
    measure = np.where(rows["inst"] == E.I_IV, np.where(rows["measure"] == E.M_PENSION,
                                                        _IV_MEASURES.index("pension"),
                                                        _IV_MEASURES.index("integration")), -1)
    birth_year = (np.asarray(pers["birth"], dtype=np.int64).astype("datetime64[D]").astype("datetime64[Y]")
                  .astype(np.int64) + 1970) if n else np.zeros(0, dtype=np.int64)
    enum = load_schema("spells")
    spells = pd.DataFrame({
        # dictionary-encoded as by iizrisk.io.encode_pseudonyms: sorted pseudonyms, codes = rank
        "person_id": pd.Categorical.from_codes(
            rank[who].astype(np.int32), categories=pd.Index(_str_series(ids.take(pa.array(np.argsort(rank)))))),
        "institution": _categorical(rows["inst"], enum.field("institution").enum),
        "case_id": _str_series(case),
        "start_date": _time.from_days(rows["start"]),
        "end_date": _time.from_days(np.where(rows["end"] == int(OPEN_END), int(OPEN_END), rows["end"])),
        "exit_reason": _categorical(rows["reason"], _EXIT_REASONS),
        "recorded_date": _time.from_days(rows["recorded"]),
        "canton": _categorical(pers["canton"][who], _CANTONS) if n else _categorical([], _CANTONS),
        "birth_year": pd.array(birth_year[who], dtype="Int16"),
        "sex": _categorical(pers["sex"][who], ("F", "M")),
        "nationality_group": _categorical(pers["nat"][who], E.NATIONALITIES),
        "education": _categorical(pers["edu"][who], E.EDUCATIONS),
        "iv_measure": _categorical(measure, _IV_MEASURES),
    })
    # interventions
    tw = truth["who"]
    inst_names = np.array(["", "ALV", "IV", "ALV+IV", "SH", "ALV+SH", "IV+SH", "ALV+IV+SH"], dtype=object)
    mask = truth["assess_inst"].astype(np.int64)
    # a joint assessment involves at least two institutions: IV joins ALV or SH, ALV joins IV
    mask = np.where(np.isin(mask, [1, 4]), mask | 2, np.where(mask == 2, 3, mask))
    iorder = np.lexsort((rank[tw], truth["assess_day"]))
    interventions = pd.DataFrame({
        "person_id": _str_series(ids.take(pa.array(tw[iorder]))),
        "date": _time.from_days(truth["assess_day"][iorder]),
        "type": pd.Series(["joint_assessment"] * len(tw), dtype="str"),
        "institutions": pd.Series(inst_names[mask[iorder]], dtype="str"),
    })
    # truth, one row per person (pseudonym order)
    porder = np.argsort(rank, kind="stable")
    assessed = np.zeros(n, dtype=bool)
    assessed[tw] = True
    a_day = np.full(n, int(OPEN_END), dtype=np.int64)
    a_day[tw] = truth["assess_day"]

    sw = samp["who"].astype(np.int64)

    def per_person(values, dtype, sampled=None):
        out = pd.array([pd.NA] * n, dtype=dtype)
        if len(tw):
            out[tw] = values
        if sampled is not None and len(sw):
            out[sw] = sampled
        return out

    in_sample = np.zeros(n, dtype=bool)
    in_sample[sw] = True
    s_day = np.full(n, int(OPEN_END), dtype=np.int64)
    s_day[sw] = samp["day"]

    imm = pers["immigrant"].astype(bool)
    truth_df = pd.DataFrame({
        "person_id": _str_series(ids),
        "severity": pers["severity"].astype(np.float64),
        "immigrant": imm,
        "arrival_date": _time.from_days(np.where(imm, pers["L0"], int(OPEN_END))),
        "assessed": assessed,
        "assessment_date": _time.from_days(a_day),
        "effect": np.full(n, effect),
        "hazard_ratio": np.full(n, hr),
        "effect_months": np.full(n, p.effect_months, dtype=np.int64),
        "rd_12m": per_person(truth["rd"].astype(bool), "boolean", samp["rd"].astype(bool)),
        "rd_12m_cf": per_person(truth["rd_cf"].astype(bool), "boolean", samp["rd_cf"].astype(bool)),
        "new_spells_24m": per_person(truth["new"].astype(np.int64), "Int64", samp["new"].astype(np.int64)),
        "new_spells_24m_cf": per_person(truth["new_cf"].astype(np.int64), "Int64", samp["new_cf"].astype(np.int64)),
        "individual_effect": per_person(truth["effect"].astype(np.float64), "Float64",
                                        samp["effect"].astype(np.float64)),
        "effect_sample": in_sample,
        "sample_date": _time.from_days(s_day),
    }).iloc[porder].reset_index(drop=True)
    meta = {"n_persons": n, "start": str(_time.to_date(w0)), "end": str(_time.to_date(w1)), "seed": int(seed),
            "effect": effect, "hazard_ratio": hr, "canton": canton, "version": 1}
    return SyntheticPopulation(spells=spells, interventions=interventions, truth=truth_df, params=p, meta=meta)


def _rank(words: np.ndarray) -> np.ndarray:
    """Rank of each person by pseudonym (lexicographic order of the 256-bit value)."""
    if not len(words):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((words[:, 3], words[:, 2], words[:, 1], words[:, 0]))
    rank = np.empty(len(words), dtype=np.int64)
    rank[order] = np.arange(len(words))
    return rank


def _case_ids(keys: np.ndarray, inst: np.ndarray, case_start: np.ndarray) -> pa.Array:
    """Case numbers: institution prefix and 16 hex digits, one per (person, institution, case start)."""
    n = len(keys)
    if not n:
        return pa.array([], pa.large_string())
    h = E._mix(keys ^ E._mix(case_start.astype(np.int64).view(np.uint64) * np.uint64(0xD6E8FEB86659FD93)
                             + inst.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    digits = _hex_words(h[:, None])
    width = 6 + 16
    chars = np.full((n, width), ord(" "), dtype=np.uint8)
    lengths = np.zeros(n, dtype=np.int64)
    for code, name in enumerate(E.INSTITUTIONS):
        sel = inst == code
        pre = np.frombuffer((_CASE_PREFIX[name] + "-").encode(), dtype=np.uint8)
        chars[np.ix_(sel, np.arange(len(pre)))] = pre
        chars[np.ix_(sel, np.arange(len(pre), len(pre) + 16))] = digits[sel]
        lengths[sel] = len(pre) + 16
    # variable-length strings: pack rows without the trailing padding
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    mask = np.arange(width)[None, :] < lengths[:, None]
    data = chars[mask]
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
