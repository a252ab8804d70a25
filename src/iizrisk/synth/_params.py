"""Parameters of the synthetic population: :class:`SwissDefaults`.

Every rate is *per month*. A hazard is a tuple of rates over the duration
bands :data:`BANDS` (months since the episode started, or since the last
exit for entries from outside); a shorter tuple repeats its last value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["BANDS", "AGE_BANDS", "SwissDefaults"]

#: Duration bands (months) of every hazard tuple: [0,1), [1,3), [3,6), [6,12), [12,18), [18,24),
#: [24,36), [36,60), [60, inf).
BANDS: tuple[float, ...] = (0.0, 1.0, 3.0, 6.0, 12.0, 18.0, 24.0, 36.0, 60.0)
#: Age bands of every age-effect tuple: 15-24, 25-34, 35-44, 45-54, 55-64.
AGE_BANDS: tuple[int, ...] = (15, 25, 35, 45, 55, 65)

_CANTON_POPULATION = {  # residents in thousands (BFS STATPOP 2023, rounded)
    "ZH": 1605, "BE": 1063, "VD": 842, "AG": 726, "SG": 529, "GE": 514, "LU": 424, "TI": 356,
    "VS": 357, "FR": 340, "BL": 295, "SO": 284, "TG": 294, "SZ": 165, "GR": 203, "BS": 197,
    "NE": 178, "ZG": 130, "JU": 74, "SH": 85, "AR": 56, "NW": 44, "GL": 42, "OW": 39,
    "UR": 38, "AI": 17,
}
_CANTON_SH = {  # relative social-assistance entry (cantonal SH rates differ about fourfold)
    "BS": 1.7, "NE": 1.8, "GE": 1.4, "VD": 1.4, "BE": 1.2, "ZH": 1.0, "SO": 1.0, "BL": 0.9,
    "FR": 0.9, "JU": 1.1, "TI": 1.0, "LU": 0.8, "SG": 0.8, "AG": 0.8, "TG": 0.7, "SH": 1.0,
    "VS": 0.7, "GR": 0.6, "ZG": 0.6, "SZ": 0.5, "AR": 0.7, "GL": 0.7, "OW": 0.4, "NW": 0.4,
    "UR": 0.4, "AI": 0.4,
}


def _d(**kw) -> Any:
    return field(default_factory=lambda: dict(kw))


@dataclass(frozen=True)
class SwissDefaults:
    """All parameters of :func:`iizrisk.synth.generate`, with Swiss defaults.

    The defaults are calibrated so that the BFS figures of docs/domain.md section 8
    are reproduced (see :func:`iizrisk.synth.calibration_report`). Change any
    of them with ``generate(..., params={"name": value})`` or
    :func:`dataclasses.replace`; dict-valued parameters are replaced whole
    unless given as a partial dict (then merged key by key).

    Hazards are monthly rates over :data:`BANDS`. A person's hazard for cause
    ``c`` is ``base_c(duration) * age_c[age band] * exp(severity_c * S +
    history_c * log(1 + n) + recent_c * r + x_c)`` with ``S`` the latent
    severity, ``n`` the number of ALV, IV and SH spells the person had before,
    ``r`` the number of them started in the last ``recent_months`` (the current
    one included), and ``x_c`` the canton and recent-immigration terms of
    entries. Coefficients are looked up by hazard key, then (for entries) by
    destination, ``"OUT->SH"``; missing ones are 0 (1 for age multipliers).

    Attributes
    ----------
    age_min, age_max : int
        People are at risk from their 15th to their 65th birthday (AHV age).
    female_share : float
    nationality : dict
        Shares of CH, EU_EFTA and THIRD in the population at risk.
    immigrant_share : dict
        Per nationality group, the share that immigrates during working life
        (at an age of 18 plus a Gamma(2, ``immigration_age_scale``) number of years);
        the others are at risk from age 15.
    education : dict
        Per nationality group, shares of compulsory, upper_secondary, tertiary, unknown.
    canton_population : dict
        Weights of the 26 cantons (residents).
    canton_sh : dict
        Multiplier of social-assistance entry hazards per canton.
    severity_education, severity_third, severity_immigrant : float / dict
        Latent severity ``S = N(0, 1) + severity_education[edu] + severity_third *
        [THIRD] + severity_immigrant * [immigrant]``: a multi-problem index
        (health, debts, skills, family) that raises entry hazards and lowers
        exit hazards.
    mortality_a, mortality_b, mortality_severity : float
        Gompertz mortality ``a * exp(b * age) * exp(mortality_severity * S)`` per year.
    relocation_rate, relocation_rate_immigrant : float
        Yearly hazard of leaving the territory (emigration or, with ``canton=``,
        a move to another canton); immigrants leave more often.
    hazards : dict of str to tuple
        Base hazards. ``"OUT:none-><dest>"`` is the entry hazard from outside
        (``dest`` = ALV, SH, IV, BB); after leaving an institution it competes
        with the *excess* hazard ``"OUT:<prev>-><dest>"`` (``prev`` = where the
        person left last: ``ALV``, ``ALV_EXH`` (exhausted), ``SH``, ``IV``,
        ``BB``), high right after the exit and fading; bands count months since
        the last exit. Keys ``"<STATE>:<cause>"`` are the
        causes ending (or adding to) an episode; bands count months since its start:
        ALV: employment, other, to_IV, to_SH, top_up (social assistance starts
        alongside); SH: employment, other, to_ALV, to_IV; IV (assessment and
        measures): pension, refusal, refusal_SH, employment, top_up; IVP (pension):
        revision; BB: education, employment, to_ALV, to_SH.
    severity_effects, history_effects, recent_effects : dict of str to float
        Log-hazard coefficients of ``S``, ``log(1 + n)`` and ``r`` per hazard key
        (or per destination ``"OUT->SH"``, applying to every ``OUT:*->SH`` key).
        The recent-instability term concentrates moves between ALV and SH on
        people who are already cycling: it makes the BFS revolving door.
    recent_months : int
        Window of ``r``.
    age_effects : dict of str to tuple
        Hazard multipliers per age band (:data:`AGE_BANDS`), same keys.
    alv_entitlement_days : tuple
        Daily allowances under 25, from 25, from 55 (200, 400, 520; 21.7 per month):
        the ALV spell ends with ``benefit_exhausted`` when they are used up.
    alv_framework_months : int
        A re-entry within this many months of the framework start continues the
        old entitlement (what is left of it).
    sh_keep_on_alv, sh_keep_on_iv : float
        When a social-assistance recipient moves to ALV (IV), the probability
        that social assistance continues alongside (top-up; concurrent
        registration) instead of closing with ``transfer``.
    transfer_gap_days : int
        A transfer to another institution starts 0..this many days after the end.
    recent_immigrant_years, recent_immigrant_sh, recent_immigrant_alv : float
        Within this many years of immigration, entry hazards into SH and ALV are
        multiplied by these factors.
    assessment_intercept, assessment_severity, assessment_history,
    assessment_concurrent, assessment_sh : float
        Joint assessments are *offered* at the start of an ALV, SH or IV episode
        inside the reporting period, with probability
        ``logistic(intercept + severity * S + history * log(1 + n) + concurrent *
        [ALV or IV together with SH] + sh * [SH])``: confounded by severity and
        history, never at random. At most one per person.
    assessment_delay_days : tuple
        The assessment takes place uniformly 14..90 days after the episode
        starts, if the episode lasts that long (otherwise it does not happen).
    effect_months : int
        How long the assessment's effect lasts (see ``generate(effect=...)``).
    het_gain, het_severity_center, het_severity_width, het_iv, het_sh_long_months, het_sh_long,
    het_history_decay : float
        Heterogeneous effects (``generate(..., heterogeneous=True)``): an
        assessment's effect is ``min(effect * het_gain * m, 1)`` with the
        modifier ``m = exp(-((S - het_severity_center) / het_severity_width)^2 / 2)
        * het_iv^[in an IV process] * het_sh_long^[social assistance for at
        least het_sh_long_months] * exp(-het_history_decay * (n - 1))``, ``n``
        the number of ALV, IV and SH spells started so far (the current one
        included), all on the assessment day. Defaults (2, 0.5, 1, 0.1, 12,
        0.1, 0.35): strongest (twice ``effect``) at moderate severity in a
        first registration, a tenth in an IV process or after a year of
        social assistance, fading with every earlier spell.
    bb_youth_age : int
        BB (vocational training, case management) is entered before this age.
    bslb_youth_mean, bslb_adult_rate, bslb_alv_share, bslb_duration_months : float
        Career guidance: a Poisson number of short spells between 15 and 25
        (mean), spells later in life (per year), and a spell alongside this
        share of ALV spells; durations exponential with this mean (at least 2 weeks).
    mig_share, mig_duration_months : dict / float
        Share of immigrants of each nationality group registered with the
        integration services on arrival, and the mean duration.
    ktg_before_iv, ktg_rate, uv_rate : float
        Sickness daily allowance before this share of IV registrations, plus
        free-standing sickness (KTG) and accident (UV) spells per year (about 6 %
        of insured workers draw an accident daily allowance in a year).
    recorded_delay_days : dict
        Mean reporting delay (days) per institution: a row becomes known that
        long after its start, and its end that long after the end.
    unknown_exit_share : float
        Share of closed spells whose exit reason is recorded as ``unknown``.
    follow_up_months : int
        Months simulated after the reporting period, for the truth outcomes.
    """

    # demography
    age_min: int = 15
    age_max: int = 65
    female_share: float = 0.48
    nationality: dict = _d(CH=0.66, EU_EFTA=0.19, THIRD=0.15)
    immigrant_share: dict = _d(CH=0.0, EU_EFTA=0.6, THIRD=0.75)
    immigration_age_scale: float = 5.0
    education: dict = _d(
        CH=(0.14, 0.56, 0.26, 0.04),
        EU_EFTA=(0.24, 0.40, 0.30, 0.06),
        THIRD=(0.40, 0.30, 0.15, 0.15),
    )
    canton_population: dict = field(default_factory=lambda: dict(_CANTON_POPULATION))
    canton_sh: dict = field(default_factory=lambda: dict(_CANTON_SH))
    severity_education: dict = _d(compulsory=0.45, upper_secondary=0.0, tertiary=-0.35, unknown=0.25)
    severity_third: float = 0.25
    severity_immigrant: float = 0.1
    mortality_a: float = 2.5e-5
    mortality_b: float = 0.085
    mortality_severity: float = 0.35
    relocation_rate: float = 0.005
    relocation_rate_immigrant: float = 0.03

    # hazards (per month) over BANDS
    hazards: dict = field(default_factory=lambda: {
        # entries from outside: OUT:none->X for people never registered; OUT:<prev>->X is the excess
        # hazard after leaving <prev> (high right after the exit, fading: the revolving door)
        "OUT:none->ALV": (0.00659,),
        "OUT:none->SH": (0.00138,),
        "OUT:none->IV": (0.000274,),
        "OUT:none->BB": (0.0009,),
        "OUT:ALV->ALV": (0.0216, 0.025, 0.0208, 0.0123, 0.00336, 0.00112, 0.0),
        "OUT:ALV->SH": (8.82e-05, 8.82e-05, 6.58e-05, 4.39e-05, 2.2e-05, 0.0),
        "OUT:ALV->IV": (9.4e-05, 0.0),
        "OUT:ALV_EXH->SH": (0.000112, 9.56e-05, 4.78e-05, 1.28e-05, 3.19e-06, 0.0),
        "OUT:ALV_EXH->ALV": (0.0, 0.0, 0.0, 0.00953, 0.0667, 0.0476, 0.0191, 0.0),
        "OUT:ALV_EXH->IV": (0.000469, 0.000469, 0.000469, 0.000282, 0.0),
        "OUT:SH->SH": (0.00282, 0.00282, 0.00229, 0.00141, 0.000883, 0.000528, 0.000282, 7.05e-05, 0.0),
        "OUT:SH->ALV": (0.0, 0.0),
        "OUT:SH->IV": (0.000282, 0.000188, 0.0),
        "OUT:IV->IV": (0.0009, 0.0009, 0.0009, 0.0007, 0.0004, 0.0002, 0.0),
        "OUT:IV->SH": (0.00261, 0.00209, 0.00156, 0.00104, 0.000522, 0.000261, 0.0),
        "OUT:IV->ALV": (0.00313, 0.00209, 0.00104, 0.0),
        "OUT:BB->ALV": (0.002, 0.002, 0.002, 0.001, 0.0),
        "OUT:BB->SH": (0.001, 0.0),
        "OUT:BB->BB": (0.003, 0.003, 0.002, 0.001, 0.0),
        "OUT:BB->IV": (0.000188, 0.0),
        # causes ending (or adding to) an episode, by months since its start
        "ALV:employment": (0.0557, 0.1, 0.111, 0.0892, 0.0724, 0.0557, 0.0446, 0.0335, 0.0335),
        "ALV:other": (0.008,),
        "ALV:to_IV": (0.000282,),
        "ALV:to_SH": (0.000127,),
        "ALV:top_up": (0.000594, 0.000212, 0.00017, 0.000127, 0.000127),
        "SH:employment": (0.0282, 0.0422, 0.0422, 0.0422, 0.0375, 0.0328, 0.0254, 0.0188, 0.0141),
        "SH:other": (0.0169, 0.0169, 0.0169, 0.016, 0.0141, 0.0122, 0.0103),
        "SH:to_ALV": (0.000846,),
        "SH:to_IV": (0.00094,),
        "IV:pension": (0.0, 0.004, 0.015, 0.035, 0.045, 0.045, 0.04, 0.03, 0.03),
        "IV:refusal": (0.000738, 0.00147, 0.00296, 0.00369, 0.00443, 0.00443, 0.00369),
        "IV:refusal_SH": (0.000209, 0.000418, 0.000833, 0.000833, 0.000833, 0.000833, 0.000833),
        "IV:employment": (0.00147, 0.00147, 0.00222, 0.00222, 0.00222, 0.00222, 0.00147),
        "IV:top_up": (0.002, 0.00151, 0.00101),
        "IVP:revision": (0.0003,),
        "BB:education": (0.01, 0.015, 0.025, 0.035, 0.045, 0.05, 0.05),
        "BB:employment": (0.008,),
        "BB:to_ALV": (0.004,),
        "BB:to_SH": (0.0015,),
    })
    severity_effects: dict = _d(**{
        "OUT->ALV": 0.45, "OUT->SH": 0.95, "OUT->IV": 0.85, "OUT->BB": 0.6,
        "OUT:ALV->ALV": 1.4, "OUT:ALV->SH": 1.22, "OUT:SH->SH": 1.45, "OUT:SH->ALV": 0.72,
        "OUT:IV->SH": 1.22, "OUT:IV->ALV": 0.72, "ALV:employment": -0.35, "ALV:other": 0.2,
        "ALV:to_IV": 0.8, "ALV:to_SH": 1.07, "ALV:top_up": 1.07, "SH:employment": -0.3,
        "SH:other": -0.1, "SH:to_ALV": 0.07, "SH:to_IV": 0.5, "IV:pension": 0.4,
        "IV:refusal": -0.3, "IV:refusal_SH": 0.77, "IV:employment": -0.5, "IV:top_up": 0.87,
        "BB:education": -0.4, "BB:to_SH": 0.8, "BB:to_ALV": 0.2,
    })
    history_effects: dict = _d(**{"OUT->ALV": 0.0, "OUT->SH": 0.0, "OUT->IV": 0.2, "SH:employment": -0.1})
    recent_effects: dict = _d(**{
        "OUT:ALV_EXH->SH": 0.86, "OUT:ALV->SH": 0.86, "ALV:top_up": 0.86, "ALV:to_SH": 0.86,
        "OUT:SH->ALV": 0.86, "SH:to_ALV": 0.86,
    })
    recent_months: int = 24
    age_effects: dict = _d(**{
        "OUT->ALV": (0.9, 1.2, 1.0, 0.9, 0.75),
        "OUT->SH": (1.3, 1.2, 1.0, 0.8, 0.6),
        "OUT->IV": (0.3, 0.55, 1.0, 1.8, 2.6),
        "OUT->BB": (1.0, 0.0, 0.0, 0.0, 0.0),
        "ALV:employment": (1.15, 1.1, 1.0, 0.85, 0.6),
        "SH:employment": (1.3, 1.1, 1.0, 0.8, 0.5),
        "IV:pension": (0.5, 0.7, 1.0, 1.2, 1.4),
    })
    alv_entitlement_days: tuple = (200, 400, 520)
    alv_framework_months: int = 24
    sh_keep_on_alv: float = 0.5
    sh_keep_on_iv: float = 0.8
    transfer_gap_days: int = 30
    recent_immigrant_years: float = 5.0
    recent_immigrant_sh: float = 2.5
    recent_immigrant_alv: float = 1.3

    # joint assessments
    assessment_intercept: float = -5.2
    assessment_severity: float = 0.8
    assessment_history: float = 0.6
    assessment_recent: float = 0.4
    assessment_concurrent: float = 1.2
    assessment_sh: float = 0.5
    assessment_delay_days: tuple = (14, 90)
    effect_months: int = 24
    het_gain: float = 2.0
    het_severity_center: float = 0.5
    het_severity_width: float = 1.0
    het_iv: float = 0.1
    het_sh_long_months: float = 12.0
    het_sh_long: float = 0.1
    het_history_decay: float = 0.35

    # other institutions
    bb_youth_age: int = 25
    bslb_youth_mean: float = 0.8
    bslb_adult_rate: float = 0.012
    bslb_alv_share: float = 0.1
    bslb_duration_months: float = 2.0
    mig_share: dict = _d(CH=0.0, EU_EFTA=0.08, THIRD=0.8)
    mig_duration_months: float = 20.0
    ktg_before_iv: float = 0.35
    ktg_rate: float = 0.02
    uv_rate: float = 0.05

    # reporting
    recorded_delay_days: dict = _d(ALV=5, IV=25, SH=15, BB=10, BSLB=7, MIG=10, UV=10, KTG=15)
    unknown_exit_share: float = 0.02
    follow_up_months: int = 24

    # ------------------------------------------------------------------ helpers
    def replace(self, overrides: dict | None = None, **kw) -> SwissDefaults:
        """A copy with some parameters changed; partial dicts are merged into dict parameters.

        Examples
        --------
        >>> p = SwissDefaults().replace({"hazards": {"ALV:other": (0.01,)}})
        >>> p.hazards["ALV:other"], "SH:other" in p.hazards
        ((0.01,), True)
        """
        changes = dict(overrides or {}, **kw)
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown synthetic-population parameter(s) {unknown}; known: {sorted(names)}")
        merged: dict[str, Any] = {}
        for name, value in changes.items():
            old = getattr(self, name)
            merged[name] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
        out = dataclasses.replace(self, **merged)
        out.check()
        return out

    def to_dict(self) -> dict:
        """Plain dict of every parameter (JSON-friendly)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, dict):
                v = {k: list(x) if isinstance(x, tuple) else x for k, x in v.items()}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    def check(self) -> None:
        """Raise :class:`~iizrisk.errors.ConfigError` naming every invalid parameter."""
        problems = []
        for key, rates in self.hazards.items():
            if not isinstance(rates, tuple | list) or not rates or len(rates) > len(BANDS) or \
                    any(r < 0 for r in rates):
                problems.append(f"hazards[{key!r}] must be 1..{len(BANDS)} rates >= 0")
        for key, mult in self.age_effects.items():
            if len(mult) != len(AGE_BANDS) - 1 or any(m < 0 for m in mult):
                problems.append(f"age_effects[{key!r}] must be {len(AGE_BANDS) - 1} multipliers >= 0")
        for name in ("nationality",):
            if abs(sum(getattr(self, name).values()) - 1) > 1e-9:
                problems.append(f"{name} shares must sum to 1")
        for nat, shares in self.education.items():
            if len(shares) != 4 or abs(sum(shares) - 1) > 1e-9:
                problems.append(f"education[{nat!r}] must be 4 shares summing to 1")
        if set(self.canton_population) - set(self.canton_sh):
            problems.append("canton_sh needs a value for every canton of canton_population")
        if not 0 <= self.age_min < self.age_max:
            problems.append("age_min must be below age_max")
        if problems:
            raise ConfigError("invalid synthetic-population parameters: " + "; ".join(problems))
