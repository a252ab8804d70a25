"""The vectorised engine of the synthetic population (see :mod:`iizrisk.synth`).

Random numbers are *counter-based*: every draw is a hash of (seed, person,
episode index, purpose), so a person's life does not depend on who else is
simulated, on chunk sizes, or on the order of operations. This is what makes
the counterfactual run exact: the assessed people are simulated a second
time without the effect and draw the same numbers, so their lives are
identical up to the assessment (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._time import OPEN_END
from ._params import AGE_BANDS, BANDS, SwissDefaults

DPM = 30.436875  # days per month
DPY = 365.2425  # days per year

# states of the episode loop
OUT, ALV, SH, IVA, IVP, BB = range(6)
# where the person left last (memory of an OUT episode)
P_NONE, P_ALV, P_ALV_EXH, P_SH, P_IV, P_BB = range(6)
PREV_NAMES = ("none", "ALV", "ALV_EXH", "SH", "IV", "BB")
# institution codes: the schema's order
INSTITUTIONS = ("ALV", "IV", "SH", "BB", "BSLB", "MIG", "UV", "KTG")
I_ALV, I_IV, I_SH, I_BB, I_BSLB, I_MIG, I_UV, I_KTG = range(8)
# exit reasons: the schema's order
R_EMP, R_EDU, R_TRANS, R_EXH, R_PENS, R_RELOC, R_DEATH, R_OTHER, R_UNKNOWN = range(9)
R_OPEN = -1
# IV measure of a row (extension column iv_measure)
M_NONE, M_INTEGRATION, M_PENSION = 0, 1, 2
# how a life at risk ends
L_AGE, L_DEATH, L_RELOC = 0, 1, 2

NATIONALITIES = ("CH", "EU_EFTA", "THIRD")
EDUCATIONS = ("compulsory", "upper_secondary", "tertiary", "unknown")

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
K_PERSON = 1 << 20  # episode index used for person-level draws


# ----------------------------------------------------------------------------- RNG
def _mix_int(x: int) -> int:
    x &= _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def person_keys(seed: int, pids: np.ndarray) -> np.ndarray:
    """One 64-bit key per person id, from the seed."""
    base = np.uint64(_mix_int(_mix_int(int(seed) & _MASK) + 0x1234567))
    return _mix(pids.astype(np.uint64) * np.uint64(_GOLDEN) + base)


def bits(keys: np.ndarray, k: int, stream: int) -> np.ndarray:
    """64 random bits per key for (episode index ``k``, purpose ``stream``)."""
    c = np.uint64(_mix_int((int(k) << 24) + int(stream) * 0x51ED27 + 0xABCDEF))
    return _mix(keys ^ c)


def uniform(keys: np.ndarray, k: int, stream: int) -> np.ndarray:
    """Uniform numbers in (0, 1)."""
    return ((bits(keys, k, stream) >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / (1 << 53))


def expo(keys: np.ndarray, k: int, stream: int) -> np.ndarray:
    """Standard exponential numbers."""
    return -np.log(uniform(keys, k, stream))


def normal(keys: np.ndarray, k: int, stream: int) -> np.ndarray:
    """Standard normal numbers (Box-Muller)."""
    u1, u2 = uniform(keys, k, stream), uniform(keys, k, stream + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


# ---------------------------------------------------------------------- hazards
class Hazard:
    """Piecewise-constant monthly hazard over :data:`BANDS`, with exact inversion."""

    def __init__(self, rates):
        r = list(rates) + [rates[-1]] * (len(BANDS) - len(rates))
        self.edges = np.asarray(BANDS, dtype=np.float64)
        self.rates = np.asarray(r, dtype=np.float64)
        self.cum = np.concatenate([[0.0], np.cumsum(self.rates[:-1] * np.diff(self.edges))])

    def H(self, x):
        """Cumulative hazard at ``x`` months (finite, >= 0)."""
        i = np.searchsorted(self.edges, x, side="right") - 1
        return self.cum[i] + self.rates[i] * (x - self.edges[i])

    def inv(self, y):
        """Smallest ``x`` with ``H(x) >= y`` (inf when never reached)."""
        i = np.searchsorted(self.cum, y, side="right") - 1
        r = self.rates[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = self.edges[i] + (y - self.cum[i]) / r
        return np.where(r > 0, x, np.where(y > self.cum[i], np.inf, self.edges[i]))


def latent(hz: Hazard, e: np.ndarray, mult: np.ndarray, d0=None, win=None, hr=1.0) -> np.ndarray:
    """Months until the event of one cause, by inversion of its cumulative hazard.

    ``e`` are Exp(1) draws, ``mult`` the person's hazard multipliers, ``d0`` the
    months already elapsed (left truncation), ``win`` = (w0, w1) the effect
    window in the same duration coordinates, during which the hazard is
    multiplied by ``hr`` (a number, or one per person).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inc = e / mult
        base = 0.0 if d0 is None else d0
        if win is None or np.all(np.asarray(hr) == 1.0):
            y = inc if d0 is None else hz.H(d0) + inc
            x = hz.inv(y)
        else:
            w0, w1 = win
            hw0, hw1 = hz.H(w0), hz.H(w1)
            g_d0 = (hz.H(d0) if d0 is not None else 0.0) + (hr - 1.0) * (hz.H(np.clip(base, w0, w1)) - hw0)
            y = g_d0 + inc
            g1 = hw0 + hr * (hw1 - hw0)
            x = np.where(y <= hw0, y, np.where(y <= g1, hw0 + (y - hw0) / np.maximum(hr, 1e-300), hw1 + (y - g1)))
            x = hz.inv(x)
    return x - base


def effect_modifier(p: SwissDefaults, S, in_iv, sh_months, n_core) -> np.ndarray:
    """Relative size of the assessment's effect in a person's situation (heterogeneous effects).

    ``exp(-((S - het_severity_center) / het_severity_width)^2 / 2)`` (strongest at
    moderate severity), times ``het_iv`` in an IV process, times ``het_sh_long``
    after ``het_sh_long_months`` of social assistance, times ``exp(-het_history_decay
    * (n_core - 1))`` for each ALV/IV/SH spell before the current one.
    """
    z = (np.asarray(S, dtype=np.float64) - p.het_severity_center) / p.het_severity_width
    m = np.exp(-0.5 * z * z)
    m = m * np.where(in_iv, p.het_iv, 1.0) * np.where(np.asarray(sh_months) >= p.het_sh_long_months, p.het_sh_long, 1.0)
    return m * np.exp(-p.het_history_decay * np.maximum(np.asarray(n_core, dtype=np.float64) - 1.0, 0.0))


def individual_effect(p: SwissDefaults, effect: float, heterogeneous: bool, S, in_iv, sh_months, n_core
                      ) -> np.ndarray:
    """The effect (relative reduction of the entry hazards, at most 1) of an assessment in this situation."""
    n = len(np.atleast_1d(S))
    if not heterogeneous:
        return np.full(n, float(effect))
    return np.minimum(float(effect) * p.het_gain * effect_modifier(p, S, in_iv, sh_months, n_core), 1.0)


# ------------------------------------------------------------------------ persons
@dataclass
class Persons:
    """Person-level arrays of one chunk of the population at risk."""

    pid: np.ndarray  # global person index (int64)
    key: np.ndarray  # RNG key (uint64)
    birth: np.ndarray  # birth day (int64)
    sex: np.ndarray  # 0 F, 1 M
    nat: np.ndarray  # index into NATIONALITIES
    edu: np.ndarray  # index into EDUCATIONS
    canton: np.ndarray  # index into the canton list
    immigrant: np.ndarray  # bool
    severity: np.ndarray  # float64
    L0: np.ndarray  # first day at risk
    L1: np.ndarray  # first day no longer at risk
    life_end: np.ndarray  # L_AGE, L_DEATH, L_RELOC
    imm_until: np.ndarray  # last day counted as recent immigrant (or very negative)
    sh_factor: np.ndarray  # canton multiplier of SH entries

    def __len__(self) -> int:
        return len(self.pid)

    def take(self, idx: np.ndarray) -> Persons:
        return Persons(**{k: v[idx] for k, v in self.__dict__.items()})


def make_persons(pids: np.ndarray, p: SwissDefaults, *, seed: int, first_day: int, last_day: int,
                 cantons: tuple[str, ...], canton: str | None) -> Persons:
    """Draw the persons ``pids`` of the population at risk of [first_day, last_day]."""
    key = person_keys(seed, pids)
    n = len(pids)

    def u(j):
        return uniform(key, K_PERSON, j)

    lo = first_day - int(p.age_max * DPY)
    hi = last_day - int(p.age_min * DPY)
    birth = lo + np.floor(u(1) * (hi - lo + 1)).astype(np.int64)
    sex = (u(2) >= p.female_share).astype(np.int8)
    nat_p = np.cumsum([p.nationality[x] for x in NATIONALITIES])
    nat = np.minimum(np.searchsorted(nat_p, u(3), side="right"), 2).astype(np.int8)
    imm_share = np.array([p.immigrant_share[x] for x in NATIONALITIES])
    immigrant = u(4) < imm_share[nat]
    edu_cum = np.array([np.cumsum(p.education[x]) for x in NATIONALITIES])
    edu = np.minimum((u(5)[:, None] >= edu_cum[nat]).sum(axis=1), 3).astype(np.int8)
    if canton is None:
        w = np.array([p.canton_population[c] for c in cantons], dtype=np.float64)
        can = np.minimum(np.searchsorted(np.cumsum(w / w.sum()), u(6), side="right"), len(cantons) - 1)
    else:
        can = np.full(n, cantons.index(canton))
    can = can.astype(np.int8)
    sev_edu = np.array([p.severity_education[x] for x in EDUCATIONS])
    severity = normal(key, K_PERSON, 7) + sev_edu[edu] + p.severity_third * (nat == 2) + \
        p.severity_immigrant * immigrant
    imm_age = p.age_min + 3 - p.immigration_age_scale * (np.log(u(9)) + np.log(u(10)))
    imm_age = np.minimum(imm_age, p.age_max - 1)
    start_age = np.where(immigrant, np.maximum(imm_age, p.age_min), p.age_min)
    L0 = birth + np.floor(start_age * DPY).astype(np.int64)
    # Gompertz death from the age at L0
    a0 = start_age
    m = p.mortality_a * np.exp(p.mortality_severity * severity)
    b = p.mortality_b
    death_age = np.log(np.exp(b * a0) + b * expo(key, K_PERSON, 11) / m) / b
    death = birth + np.floor(np.minimum(death_age, 200.0) * DPY).astype(np.int64)
    rate = np.where(immigrant, p.relocation_rate_immigrant, p.relocation_rate)
    reloc = L0 + np.floor(np.minimum(expo(key, K_PERSON, 12) / rate, 300.0) * DPY).astype(np.int64)
    age_end = birth + np.floor(p.age_max * DPY).astype(np.int64)
    L1 = np.minimum(np.minimum(age_end, death), reloc)
    life_end = np.where(L1 == age_end, L_AGE, np.where(L1 == death, L_DEATH, L_RELOC)).astype(np.int8)
    imm_until = np.where(immigrant, L0 + int(p.recent_immigrant_years * DPY), np.iinfo(np.int64).min // 4)
    sh_factor = np.array([p.canton_sh.get(c, 1.0) for c in cantons])[can]
    return Persons(pid=pids.astype(np.int64), key=key, birth=birth, sex=sex, nat=nat, edu=edu, canton=can,
                   immigrant=immigrant, severity=severity, L0=L0, L1=np.maximum(L1, L0), life_end=life_end,
                   imm_until=imm_until, sh_factor=sh_factor)


# ------------------------------------------------------------------------ records
class _Records:
    """Growing lists of spell rows (chunk-local person index)."""

    names = ("who", "inst", "start", "end", "reason", "k", "measure", "case_start")

    def __init__(self):
        self.parts = {n: [] for n in self.names}

    def add(self, who, inst, start, end, reason, k, measure=M_NONE, case_start=None):
        n = len(who)
        if not n:
            return
        self.parts["who"].append(np.asarray(who, dtype=np.int64))
        self.parts["inst"].append(np.broadcast_to(np.asarray(inst, dtype=np.int8), (n,)).copy())
        self.parts["start"].append(np.asarray(start, dtype=np.int64))
        self.parts["end"].append(np.asarray(end, dtype=np.int64))
        self.parts["reason"].append(np.broadcast_to(np.asarray(reason, dtype=np.int8), (n,)).copy())
        self.parts["k"].append(np.broadcast_to(np.asarray(k, dtype=np.int32), (n,)).copy())
        self.parts["measure"].append(np.broadcast_to(np.asarray(measure, dtype=np.int8), (n,)).copy())
        cs = start if case_start is None else case_start
        self.parts["case_start"].append(np.asarray(cs, dtype=np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        dt = {"who": np.int64, "inst": np.int8, "start": np.int64, "end": np.int64, "reason": np.int8,
              "k": np.int32, "measure": np.int8, "case_start": np.int64}
        return {n: (np.concatenate(v) if v else np.zeros(0, dtype=dt[n])) for n, v in self.parts.items()}


# --------------------------------------------------------------------- core loop
class _Model:
    """Hazards and coefficients resolved once per run."""

    def __init__(self, p: SwissDefaults):
        self.p = p
        self.hz = {k: Hazard(v) for k, v in p.hazards.items()}
        # entries from outside: the baseline ``OUT:none-><dest>`` plus, after leaving <prev>, the
        # excess ``OUT:<prev>-><dest>``: two competing causes with their own multipliers
        self.out = {}
        for pcode, pname in enumerate(PREV_NAMES):
            for dest in ("ALV", "SH", "IV", "BB"):
                parts = []
                if f"OUT:none->{dest}" in p.hazards:
                    parts.append((self.hz[f"OUT:none->{dest}"], f"OUT:none->{dest}", "OUT:"))
                if pcode != P_NONE and f"OUT:{pname}->{dest}" in p.hazards:
                    parts.append((self.hz[f"OUT:{pname}->{dest}"], f"OUT:{pname}->{dest}", "OUTX:"))
                if parts:
                    self.out[pcode, dest] = parts

    def coef(self, table: dict, key: str) -> float:
        if key in table:
            return float(table[key])
        if key.startswith("OUT:"):
            return float(table.get("OUT->" + key.split("->")[1], 0.0))
        return 0.0

    def age(self, key: str) -> np.ndarray:
        t = self.p.age_effects
        if key in t:
            return np.asarray(t[key], dtype=np.float64)
        if key.startswith("OUT:"):
            g = "OUT->" + key.split("->")[1]
            if g in t:
                return np.asarray(t[g], dtype=np.float64)
        return np.ones(len(AGE_BANDS) - 1)

    def mult(self, key: str, S, logn, band, extra=None, recent=0):
        m = np.exp(self.coef(self.p.severity_effects, key) * S + self.coef(self.p.history_effects, key) * logn
                   + self.coef(self.p.recent_effects, key) * recent)
        m = m * self.age(key)[band]
        return m if extra is None else m * extra


def age_boundary(birth, band):
    """First day of the age band after ``band`` (the birthday starting it)."""
    return birth + np.floor(np.asarray(AGE_BANDS)[np.asarray(band) + 1] * DPY).astype(np.int64)


def _age_band(day, birth):
    """Age band (index into AGE_BANDS) on ``day``, consistent with :func:`age_boundary`."""
    band = np.zeros(np.shape(day), dtype=np.int64)
    for j in range(len(AGE_BANDS) - 2):
        band += day >= age_boundary(birth, j)
    return band


@dataclass
class CoreResult:
    records: dict[str, np.ndarray]
    assess_day: np.ndarray  # per person, -1 when never assessed
    assess_inst: np.ndarray  # bitmask ALV=1, IV=2, SH=4 open at the assessment
    iterations: int
    assess_effect: np.ndarray | None = None  # per person, the effect of the assessment (1 - hazard ratio)


_STREAM = {  # purpose ids of the draws (stable: changing them changes every population)
    "OUT:ALV": 1, "OUT:SH": 2, "OUT:IV": 3, "OUT:BB": 4, "OUTX:ALV": 5, "OUTX:SH": 6, "OUTX:IV": 7, "OUTX:BB": 8,
    "ALV:employment": 10, "ALV:other": 11, "ALV:to_IV": 12, "ALV:to_SH": 13, "ALV:top_up": 14,
    "SH:employment": 20, "SH:other": 21, "SH:to_ALV": 22, "SH:to_IV": 23, "SH:keep": 24,
    "IV:pension": 30, "IV:refusal": 31, "IV:refusal_SH": 32, "IV:employment": 33, "IV:top_up": 34,
    "IVP:revision": 40,
    "BB:education": 50, "BB:employment": 51, "BB:to_ALV": 52, "BB:to_SH": 53,
    "gap": 60, "offer": 61, "delay": 62,
}


def simulate_core(pop: Persons, p: SwissDefaults, *, horizon: int, win0: int, win1: int, hr: float,
                  effect_days: float, heterogeneous: bool = False, forced_day=None,
                  forced_effect=None) -> CoreResult:
    """Simulate ALV, IV, SH and BB episodes of every person from L0 to min(L1, horizon).

    Each loop iteration advances every active person by one episode (a period
    out of the systems, or one registration episode), vectorised over persons.
    With ``heterogeneous`` each assessment's effect is ``1 - hr`` scaled by
    :func:`effect_modifier` in the person's situation. ``forced_day`` (one day
    per person) assesses every person on that day, with the effect
    ``forced_effect``, instead of the offers (which are then switched off): the
    second run of the sample of people at risk.
    """
    return _Loop(pop, p, horizon=horizon, win0=win0, win1=win1, hr=hr, effect_days=effect_days,
                 heterogeneous=heterogeneous, forced_day=forced_day, forced_effect=forced_effect).run()


_BIG = np.iinfo(np.int64).max // 4


class _Loop:
    """State of the episode loop; one method per episode type, each vectorised over its persons."""

    def __init__(self, pop: Persons, p: SwissDefaults, *, horizon: int, win0: int, win1: int, hr: float,
                 effect_days: float, heterogeneous: bool = False, forced_day=None, forced_effect=None):
        self.pop, self.p, self.model = pop, p, _Model(p)
        self.hz = self.model.hz
        self.horizon, self.win0, self.win1 = horizon, win0, win1
        self.hr, self.effect_days = hr, effect_days
        self.heterogeneous = heterogeneous
        self.use_effect = hr != 1.0
        self.rec = _Records()
        n = len(pop)
        self.assess_day = np.full(n, -1, dtype=np.int64)
        self.assess_inst = np.zeros(n, dtype=np.int8)
        self.eff0 = np.full(n, np.nan)
        self.eff1 = np.full(n, np.nan)
        self.hr_p = np.full(n, float(hr))  # hazard ratio of each person's assessment
        self.eff_p = np.full(n, round(1.0 - float(hr), 12))  # ... and its effect (as given, not 1 - hr)
        if forced_day is not None:  # everyone assessed on a given day; no offers
            fd = np.asarray(forced_day, dtype=np.int64)
            self.assess_day[:] = fd
            self.eff0[:] = fd
            self.eff1[:] = fd + effect_days
            self.eff_p[:] = np.asarray(forced_effect, dtype=np.float64)
            self.hr_p[:] = 1.0 - self.eff_p
        self.ent_m = np.asarray(p.alv_entitlement_days, dtype=np.float64) / 21.7
        self.fw_days = p.alv_framework_months * DPM
        # active persons (positions in pop) and their state; a life at risk ending before the
        # period cannot leave a spell in it
        self.ix = np.flatnonzero((pop.L0 < np.minimum(pop.L1, horizon + 1)) & (pop.L1 > win0))
        m = len(self.ix)
        self.t = pop.L0[self.ix].copy()  # start day of the current episode
        self.st = np.full(m, OUT, dtype=np.int8)
        self.prev = np.full(m, P_NONE, dtype=np.int8)
        self.d0 = np.zeros(m)  # months already spent out (OUT split at age boundaries)
        self.s0 = self.t.copy()  # first day out
        self.ncore = np.zeros(m, dtype=np.int32)  # ALV, IV and SH spells started so far
        self.recent = np.full((m, 3), -_BIG, dtype=np.int64)  # start days of the last three of them
        self.recent_days = int(p.recent_months * DPM)
        self.sho = np.zeros(m, dtype=bool)  # social assistance open
        self.shs = np.zeros(m, dtype=np.int64)  # ... since
        self.ivs = np.zeros(m, dtype=np.int64)  # start of the current IV case
        self.fws = np.full(m, -_BIG, dtype=np.int64)  # ALV framework start
        self.fwu = np.zeros(m)  # ALV months used in the framework
        self.k = 0

    # ----------------------------------------------------------------- helpers
    def run(self) -> CoreResult:
        while len(self.ix):
            self._step()
        return CoreResult(records=self.rec.arrays(), assess_day=self.assess_day, assess_inst=self.assess_inst,
                          iterations=self.k, assess_effect=self.eff_p)

    def _life_reason(self, who, inst):
        le = self.pop.life_end[who]
        at_age = R_OTHER if inst == I_IV else R_PENS
        return np.where(le == L_AGE, at_age, np.where(le == L_DEATH, R_DEATH, R_RELOC)).astype(np.int8)

    def _close(self, g, inst, start, end, reason, hit, measure=M_NONE, case_start=None):
        """Rows of the persons ``g``; rows ending at the limit are open or end with the life reason."""
        who = self.who[g]
        lim_open = self.lim_open[g]
        reason = np.where(hit, np.where(lim_open, R_OPEN, self._life_reason(who, inst)), reason)
        end = np.where(hit & lim_open, int(OPEN_END), end)
        self.rec.add(who, inst, start, end, reason, self.k, measure, case_start)

    def _mult(self, key: str, g, extra=None):
        return self.model.mult(key, self.S[g], self.logn[g], self.band[g], extra, self.rc[g])

    def _windows(self, g, anchor):
        """Effect windows (months since ``anchor``) of earlier assessments and their hazard ratios, or None."""
        if not self.use_effect:
            return None
        who = self.who[g]
        e0 = self.eff0[who]
        none = np.isnan(e0)
        if none.all():  # nobody in this group was assessed: no window at all
            return None
        w0 = np.maximum((e0 - anchor) / DPM, 0.0)
        w1 = np.maximum((self.eff1[who] - anchor) / DPM, 0.0)
        return np.where(none, 0.0, w0), np.where(none, 0.0, w1), self.hr_p[who]

    def _day(self, g, key: str, mult, win=None, effect=False):
        """Last day of the episode (or the event day) if cause ``key`` happens first."""
        e = expo(self.key[g], self.k, _STREAM[key])
        eff = effect and self.use_effect and win is not None
        months = latent(self.hz[key], e, mult, win=win[:2] if eff else None, hr=win[2] if eff else 1.0)
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.where(np.isfinite(months), self.t[g] + np.floor(months * DPM), _BIG)
        return np.minimum(d, _BIG).astype(np.int64)

    def _offer(self, g, state):
        """Joint-assessment offers at the start of this episode: (offered, assessment day) or None."""
        p = self.p
        who = self.who[g]
        t = self.t[g]
        cand = (self.assess_day[who] < 0) & (t >= self.win0) & (t <= self.win1)
        if not cand.any():
            return None
        conc = self.sho[g] & (state != SH)
        z = (p.assessment_intercept + p.assessment_severity * self.S[g] + p.assessment_history * self.logn[g]
             + p.assessment_recent * self.rc[g] + p.assessment_concurrent * conc + p.assessment_sh * (state == SH))
        off = cand & (uniform(self.key[g], self.k, _STREAM["offer"]) < 1.0 / (1.0 + np.exp(-z)))
        if not off.any():
            return None
        d_lo, d_hi = p.assessment_delay_days
        delay = d_lo + np.floor(uniform(self.key[g], self.k, _STREAM["delay"]) * (d_hi - d_lo + 1))
        day_a = t + delay.astype(np.int64)
        # the effect in the situation on the assessment day
        sh_months = np.where(self.sho[g], (day_a - self.shs[g]) / DPM, 0.0)
        eff = individual_effect(p, round(1.0 - self.hr, 12), self.heterogeneous, self.S[g], state == IVA, sh_months,
                                self.ncore[g])
        return off & (day_a <= self.win1), day_a, 1.0 - eff, eff

    def _episode_window(self, g, offered):
        """Effect windows of this episode: earlier assessments plus the one offered now."""
        if not self.use_effect:
            return None
        w = self._windows(g, self.t[g])
        if offered is None:
            return w
        if w is None:
            w = (np.zeros(len(g)), np.zeros(len(g)), np.ones(len(g)))
        off, day_a, hr_a, _ = offered
        anchor = self.t[g]
        return (np.where(off, (day_a - anchor) / DPM, w[0]),
                np.where(off, (day_a + self.effect_days - anchor) / DPM, w[1]),
                np.where(off, hr_a, w[2]))

    def _confirm(self, g, offered, end, inst_mask):
        """The offered assessment happens if the episode lasts until its day."""
        if offered is None:
            return
        off, day_a, hr_a, eff_a = offered
        took = off & (day_a <= end)
        who = self.who[g][took]
        self.assess_day[who] = day_a[took]
        self.hr_p[who] = hr_a[took]
        self.eff_p[who] = eff_a[took]
        self.assess_inst[who] = inst_mask[took]
        self.eff0[who] = day_a[took]
        self.eff1[who] = day_a[took] + self.effect_days

    def _goto(self, g, state, day):
        self.n_st[g] = state
        self.n_t[g] = day

    def _leave(self, g, prev, day):
        """Out of the systems from ``day``, having left ``prev``."""
        self.n_st[g] = OUT
        self.n_prev[g] = prev
        self.n_t[g] = day
        self.n_s0[g] = day

    def _open_sh(self, g, day):
        self.sho[g] = True
        self.shs[g] = day
        self._new_core(g, day)

    def _new_core(self, g, day):
        """A new ALV, IV or SH spell starts for the persons ``g`` on ``day``."""
        self.ncore[g] += 1
        r = self.recent[g]
        self.recent[g] = np.stack([np.broadcast_to(day, (len(g),)), r[:, 0], r[:, 1]], axis=1)

    # ------------------------------------------------------------------- step
    def _step(self):
        pop = self.pop
        m = len(self.ix)
        self.who = self.ix
        self.lim_day = np.minimum(pop.L1[self.who], self.horizon + 1)
        self.lim_open = pop.L1[self.who] > self.horizon
        self.S = pop.severity[self.who]
        self.logn = np.log1p(self.ncore)
        self.rc = (self.recent >= (self.t - self.recent_days)[:, None]).sum(axis=1)
        self.band = _age_band(self.t, pop.birth[self.who])
        self.key = pop.key[self.who]
        self.n_t = np.zeros(m, dtype=np.int64)
        self.n_st = self.st.copy()
        self.n_prev = self.prev.copy()
        self.n_d0 = np.zeros(m)
        self.n_s0 = np.zeros(m, dtype=np.int64)
        self.done = np.zeros(m, dtype=bool)
        gap = np.floor(uniform(self.key, self.k, _STREAM["gap"]) * (self.p.transfer_gap_days + 1))
        self.gap = gap.astype(np.int64)
        for state, handler in ((OUT, self._out), (ALV, self._alv), (SH, self._sh), (IVA, self._iva),
                               (IVP, self._ivp), (BB, self._bb)):
            g = np.flatnonzero(self.st == state)
            if len(g):
                handler(g)
        # an episode starting after the simulated period (or the life at risk) never happens
        self.done |= self.n_t >= self.lim_day
        keep = ~self.done
        n_st = self.n_st[keep]
        self.ix, self.t, self.st, self.prev = self.ix[keep], self.n_t[keep], n_st, self.n_prev[keep]
        self.d0 = np.where(n_st == OUT, self.n_d0[keep], 0.0)
        self.s0 = np.where(n_st == OUT, self.n_s0[keep], 0)
        for name in ("ncore", "recent", "sho", "shs", "ivs", "fws", "fwu"):
            setattr(self, name, getattr(self, name)[keep])
        self.k += 1

    # ------------------------------------------------------------------- OUT
    def _out(self, g):
        pop, p = self.pop, self.p
        who, t = self.who[g], self.t[g]
        recent = t <= pop.imm_until[who]
        extra = {"ALV": np.where(recent, p.recent_immigrant_alv, 1.0),
                 "SH": pop.sh_factor[who] * np.where(recent, p.recent_immigrant_sh, 1.0)}
        win = self._windows(g, self.s0[g])
        dests = ("ALV", "SH", "IV", "BB")
        T = np.full((len(g), len(dests)), np.inf)
        pv = self.prev[g]
        for pcode in range(len(PREV_NAMES)):
            sel = np.flatnonzero(pv == pcode)
            if not len(sel):
                continue
            gs = g[sel]
            for j, dname in enumerate(dests):
                x = extra.get(dname)
                eff = self.use_effect and dname != "BB" and win is not None
                w = (win[0][sel], win[1][sel]) if eff else None
                for hz, hkey, stream in self.model.out.get((pcode, dname), ()):
                    mult = self._mult(hkey, gs, None if x is None else x[sel])
                    e = expo(self.key[gs], self.k, _STREAM[stream + dname])
                    T[sel, j] = np.minimum(T[sel, j], latent(hz, e, mult, d0=self.d0[gs], win=w,
                                                             hr=win[2][sel] if eff else 1.0))
        j = np.argmin(T, axis=1)
        Tm = T[np.arange(len(g)), j]
        with np.errstate(invalid="ignore", over="ignore"):
            entry = np.where(np.isfinite(Tm), t + np.floor(Tm * DPM) + 1, _BIG)
        entry = np.minimum(entry, _BIG).astype(np.int64)
        # hazards change at the next age band and at the end of the recent-immigrant period
        band = self.band[g]
        last = band >= len(AGE_BANDS) - 2
        bnd = np.where(last, _BIG, age_boundary(pop.birth[who], np.where(last, 0, band)))
        imm_b = pop.imm_until[who] + 1
        bnd = np.where((imm_b > t) & (imm_b < bnd), imm_b, bnd)
        split = bnd < entry
        stop = np.minimum(entry, bnd) >= self.lim_day[g]
        self.done[g[stop]] = True
        sp = ~stop & split
        gs = g[sp]
        self.n_t[gs] = bnd[sp]
        self.n_st[gs] = OUT
        self.n_d0[gs] = self.d0[gs] + (bnd[sp] - t[sp]) / DPM
        self.n_s0[gs] = self.s0[gs]
        go = ~stop & ~split
        gs, day = g[go], entry[go]
        dest = np.array([ALV, SH, IVA, BB], dtype=np.int8)[j[go]]
        self._goto(gs, dest, day)
        ai = (dest == ALV) | (dest == IVA)
        self._new_core(gs[ai], day[ai])
        self._open_sh(gs[dest == SH], day[dest == SH])
        self.ivs[gs[dest == IVA]] = day[dest == IVA]

    # ------------------------------------------------------------------- ALV
    def _alv(self, g):
        t, band = self.t[g], self.band[g]
        age_cls = np.where(band == 0, 0, np.where(band >= 4, 2, 1))
        new_fw = (t - self.fws[g] > self.fw_days) | (self.ent_m[age_cls] - self.fwu[g] < 1.0)
        self.fws[g] = np.where(new_fw, t, self.fws[g])
        self.fwu[g] = np.where(new_fw, 0.0, self.fwu[g])
        R = self.ent_m[age_cls] - self.fwu[g]
        offered = self._offer(g, ALV)
        win = self._episode_window(g, offered)
        E = np.stack([
            self.lim_day[g] - 1,
            self._day(g, "ALV:employment", self._mult("ALV:employment", g)),
            self._day(g, "ALV:other", self._mult("ALV:other", g)),
            self._day(g, "ALV:to_IV", self._mult("ALV:to_IV", g), win, effect=True),
            self._day(g, "ALV:to_SH", self._mult("ALV:to_SH", g), win, effect=True),
            (t + np.floor(R * DPM)).astype(np.int64),
        ], axis=1)
        d_top = self._day(g, "ALV:top_up", self._mult("ALV:top_up", g), win, effect=True)
        c = np.argmin(E, axis=1)
        e = E[np.arange(len(g)), c]
        top = ~self.sho[g] & (d_top <= e)
        self._open_sh(g[top], d_top[top])
        sh_now = self.sho[g]
        self._confirm(g, offered, e, (1 + 4 * sh_now).astype(np.int8))
        self.fwu[g] += (e - t + 1) / DPM
        hit = c == 0
        reason = np.array([R_OPEN, R_EMP, R_OTHER, R_TRANS, R_TRANS, R_EXH], dtype=np.int8)[c]
        self._close(g, I_ALV, t, e, reason, hit)
        # social assistance closes with ALV on employment and at the limit, else it goes on
        sc = sh_now & ((c == 1) | hit)
        self._close(g[sc], I_SH, self.shs[g[sc]], e[sc], np.full(int(sc.sum()), R_EMP), hit[sc])
        self.sho[g[sc]] = False
        self.done[g[hit]] = True
        nt = e + 1
        to_out = (c == 1) | ((c == 2) & ~sh_now)
        self._leave(g[to_out], P_ALV, nt[to_out])
        exh = ~sh_now & (c == 5)
        self._leave(g[exh], P_ALV_EXH, nt[exh])
        cont = sh_now & ((c == 2) | (c == 4) | (c == 5))
        self._goto(g[cont], SH, nt[cont])
        new = ~sh_now & (c == 4)
        day = nt[new] + self.gap[g[new]]
        self._goto(g[new], SH, day)
        self._open_sh(g[new], day)
        iv = c == 3
        day = nt[iv] + np.where(sh_now[iv], 0, self.gap[g[iv]])
        self._goto(g[iv], IVA, day)
        self.ivs[g[iv]] = day
        self._new_core(g[iv], day)

    # -------------------------------------------------------------------- SH
    def _sh(self, g):
        offered = self._offer(g, SH)
        win = self._episode_window(g, offered)
        E = np.stack([
            self.lim_day[g] - 1,
            self._day(g, "SH:employment", self._mult("SH:employment", g)),
            self._day(g, "SH:other", self._mult("SH:other", g)),
            self._day(g, "SH:to_ALV", self._mult("SH:to_ALV", g), win, effect=True),
            self._day(g, "SH:to_IV", self._mult("SH:to_IV", g), win, effect=True),
        ], axis=1)
        c = np.argmin(E, axis=1)
        e = E[np.arange(len(g)), c]
        self._confirm(g, offered, e, np.full(len(g), 4, dtype=np.int8))
        hit = c == 0
        u = uniform(self.key[g], self.k, _STREAM["SH:keep"])
        keep = ((c == 3) & (u < self.p.sh_keep_on_alv)) | ((c == 4) & (u < self.p.sh_keep_on_iv))
        reason = np.array([R_OPEN, R_EMP, R_OTHER, R_TRANS, R_TRANS], dtype=np.int8)[c]
        cl = ~keep
        self._close(g[cl], I_SH, self.shs[g[cl]], e[cl], reason[cl], hit[cl])
        self.sho[g] = keep
        self.done[g[hit]] = True
        nt = e + 1
        out = (c == 1) | (c == 2)
        self._leave(g[out], P_SH, nt[out])
        for cc, dst in ((3, ALV), (4, IVA)):
            sel = c == cc
            day = nt[sel] + np.where(keep[sel], 0, self.gap[g[sel]])
            self._goto(g[sel], dst, day)
            self._new_core(g[sel], day)
            if dst == IVA:
                self.ivs[g[sel]] = day

    # -------------------------------------------------- IV: assessment, measures
    def _iva(self, g):
        t = self.t[g]
        offered = self._offer(g, IVA)
        win = self._episode_window(g, offered)
        E = np.stack([
            self.lim_day[g] - 1,
            self._day(g, "IV:pension", self._mult("IV:pension", g)),
            self._day(g, "IV:refusal", self._mult("IV:refusal", g)),
            self._day(g, "IV:refusal_SH", self._mult("IV:refusal_SH", g), win, effect=True),
            self._day(g, "IV:employment", self._mult("IV:employment", g)),
        ], axis=1)
        d_top = self._day(g, "IV:top_up", self._mult("IV:top_up", g), win, effect=True)
        c = np.argmin(E, axis=1)
        e = E[np.arange(len(g)), c]
        top = ~self.sho[g] & (d_top <= e)
        self._open_sh(g[top], d_top[top])
        sh_now = self.sho[g]
        self._confirm(g, offered, e, (2 + 4 * sh_now).astype(np.int8))
        hit = c == 0
        reason = np.array([R_OPEN, R_PENS, R_OTHER, R_TRANS, R_EMP], dtype=np.int8)[c]
        self._close(g, I_IV, t, e, reason, hit, M_INTEGRATION, self.ivs[g])
        sc = sh_now & ((c == 1) | (c == 4) | hit)
        self._close(g[sc], I_SH, self.shs[g[sc]], e[sc], np.where(c[sc] == 1, R_PENS, R_EMP), hit[sc])
        self.sho[g[sc]] = False
        self.done[g[hit]] = True
        nt = e + 1
        pen = c == 1
        self._goto(g[pen], IVP, nt[pen])
        out = ((c == 2) & ~sh_now) | (c == 4)
        self._leave(g[out], P_IV, nt[out])
        cont = sh_now & ((c == 2) | (c == 3))
        self._goto(g[cont], SH, nt[cont])
        new = ~sh_now & (c == 3)
        day = nt[new] + self.gap[g[new]]
        self._goto(g[new], SH, day)
        self._open_sh(g[new], day)

    # ------------------------------------------------------------- IV pension
    def _ivp(self, g):
        t = self.t[g]
        e_rev = self._day(g, "IVP:revision", self._mult("IVP:revision", g))
        e_lim = self.lim_day[g] - 1
        hit = e_lim <= e_rev
        e = np.where(hit, e_lim, e_rev)
        self._close(g, I_IV, t, e, np.full(len(g), R_OTHER), hit, M_PENSION, self.ivs[g])
        self.done[g[hit]] = True
        self._leave(g, P_IV, e + 1)

    # -------------------------------------------------------------------- BB
    def _bb(self, g):
        t = self.t[g]
        win = self._windows(g, t)
        E = np.stack([
            self.lim_day[g] - 1,
            self._day(g, "BB:education", self._mult("BB:education", g)),
            self._day(g, "BB:employment", self._mult("BB:employment", g)),
            self._day(g, "BB:to_ALV", self._mult("BB:to_ALV", g), win, effect=True),
            self._day(g, "BB:to_SH", self._mult("BB:to_SH", g), win, effect=True),
        ], axis=1)
        c = np.argmin(E, axis=1)
        e = E[np.arange(len(g)), c]
        hit = c == 0
        reason = np.array([R_OPEN, R_EDU, R_EMP, R_TRANS, R_TRANS], dtype=np.int8)[c]
        self._close(g, I_BB, t, e, reason, hit)
        self.done[g[hit]] = True
        nt = e + 1
        out = (c == 1) | (c == 2)
        self._leave(g[out], P_BB, nt[out])
        alv = c == 3
        day = nt[alv] + self.gap[g[alv]]
        self._goto(g[alv], ALV, day)
        self._new_core(g[alv], day)
        sh = c == 4
        day = nt[sh] + self.gap[g[sh]]
        self._goto(g[sh], SH, day)
        self._open_sh(g[sh], day)
