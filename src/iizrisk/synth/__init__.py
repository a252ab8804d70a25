"""Synthetic Swiss population: people moving between ALV, IV, SH and the other institutions.

:func:`generate` simulates registration spells at unemployment insurance
(ALV), disability insurance (IV), social assistance (SH), vocational training
(BB), career guidance (BSLB), migrant integration (MIG) and accident and
sickness daily allowances (UV, KTG), joint assessments (IIZ interventions)
with a known true effect, and the truth behind both. With the Swiss defaults
(:class:`SwissDefaults`) the spells reproduce the BFS figures of docs/domain.md
section 8; :func:`calibration_report` shows how closely, computed with
:mod:`iizrisk.indicators` (the code a researcher runs on real data).

Examples
--------
>>> pop = generate(300, "2019-01-01", "2021-12-31", seed=7, effect=0.3)
>>> {"ALV", "IV", "SH"} <= set(pop.spells["institution"].astype(str))
True
>>> pop.truth["hazard_ratio"].iloc[0]
np.float64(0.7)

The model
---------
**Who.** ``n_persons`` is the number of people *in the output*: people with
at least one spell in the reporting period [start, end]. They are drawn from
a simulated population at risk -- people aged 15 to 64 at some time in the
period, with uniformly spread birth dates (a stationary population) --
whose members without any spell in the period are left out
(``meta["n_at_risk"]`` says how many were simulated). Each person has a
birth year, sex, nationality group (CH, EU_EFTA, THIRD), education
(compulsory, upper_secondary, tertiary, unknown), a canton (population
weights, or the one ``canton=``), possibly an immigration date (EU_EFTA and
THIRD), and a latent *multi-problem severity* ``S`` (standard normal, higher
with compulsory or unknown education, third-country nationality and
immigration). Life at risk ends at 65 (AHV age), at death (Gompertz
mortality, higher with ``S``) or on leaving the territory (relocation).

**No burn-in needed.** Everybody is simulated from the start of their life
at risk (age 15 or arrival), decades before the period if need be, and only
the spells overlapping the period are emitted (with their true start). A
person aged 60 in the period has lived 45 simulated years: IV pensions
granted in the 1990s are still running, earlier spells count in the
history. The population is therefore in its steady state in every year.

**Episodes.** A person is always in one *episode*: out of the systems (OUT),
ALV, SH, IV (registration, early intervention and measures: ``iv_measure =
"integration"``), IV pension (``"pension"``; the IV case goes on, so the two
rows touch and merge into one IV spell) or BB. Social assistance can run
*alongside* ALV (a top-up) or an IV assessment: the SH spell then goes on
through the change of episode (e.g. ALV + SH, ALV exhausted, SH alone). Each
episode ends at the first of several competing causes, each with a monthly
hazard ``base(duration) * age[band] * exp(severity * S + history * log(1 + n)
+ recent * r)`` -- ``n`` the number of ALV/IV/SH spells so far, ``r`` those
started in the last 24 months -- sampled exactly by inverting the
cumulative hazard (:data:`BANDS` are the duration bands). The causes:

* OUT: entry into ALV, SH, IV or BB (BB before 25). The hazard depends on
  where the person left last (``OUT:<prev>-><dest>`` is an *excess* over
  ``OUT:none-><dest>``, high right after an exit and fading: the revolving
  door), on ``S``, on the number of earlier spells and recent spells, on age
  (IV entries rise with age), on the canton (SH) and on recent immigration.
* ALV: employment, other, transfer to IV, transfer to SH, SH top-up starting,
  and *benefit exhaustion* (Aussteuerung): 200 daily allowances under 25, 400
  from 25, 520 from 55 (21.7 a month), counted over a 24-month framework
  period, so that a quick re-entry continues the old entitlement. After
  exhaustion SH entry is likely for some months.
* SH: employment, other, transfer to ALV or IV (SH goes on alongside with
  probability ``sh_keep_on_alv`` / ``sh_keep_on_iv``).
* IV: pension (the IV case continues as a pension), refusal (back out, or
  on to SH: ``refusal_SH``), employment, SH starting alongside.
* IV pension: revision (rare); otherwise it runs until 65 or death.
* BB: education completed, employment, transfer to ALV or SH.

Other institutions, drawn alongside without changing the ALV/IV/SH process:
career guidance (BSLB) in youth, later in life and alongside some ALV
spells; integration services (MIG) on arrival for most third-country
immigrants; sickness allowance (KTG) before part of the IV registrations and
free-standing; accident allowance (UV).

**Exit reasons** follow what happens next: ``transfer`` when a registration
at another institution starts within ``transfer_gap_days`` (30) or is already
running, ``employment``, ``education`` (BB, BSLB), ``benefit_exhausted``,
``pension`` (an IV pension granted; ALV and SH at 65), ``death``,
``relocation``, ``other`` (IV refusal without SH, IV revision, IV at 65 --
the IV pension turns into an old-age pension, so that ``pension`` on an IV
spell keeps its meaning "IV pension granted"), and ``unknown`` for
``unknown_exit_share`` (2 %) of closed spells.

**Export view.** The data are exported on ``end``: a row appears once its
start is recorded (``recorded_delay_days`` per institution, exponential), its
end only once recorded too; a spell ending after ``end``, or whose end was
not yet recorded, is open (empty end and exit reason). ``recorded_date`` is
the day the row, including its end, became known. Spells ending before
``start`` are left out.

Joint assessments and the true effect
-------------------------------------
An assessment is *offered* at the start of an ALV, SH or IV episode in the
period with probability ``logistic(assessment_intercept + 0.8 S + 0.6 log(1 +
n) + 0.4 r + 1.2 [ALV or IV together with SH] + 0.5 [SH])``: complex
situations are assessed far more often -- confounded by severity (not
observed in the data) and history (observed), never at random. It takes
place 14-90 days after the episode starts if the episode lasts that long;
at most one per person. ``interventions`` lists them (type
``joint_assessment``, the institutions registered on the day; when only one
is, IV joins ALV or SH and ALV joins IV).

``effect`` (default 0.3) is the *true effect*: for ``effect_months`` (24)
months from the assessment day, every hazard of **starting a new ALV, IV or
SH spell** is multiplied by the hazard ratio ``HR = 1 - effect`` -- entries
and re-entries from outside, transfers from one of these institutions to
another, and SH starting alongside ALV or IV. Exits into work and benefit
exhaustion are unchanged; BB, BSLB, MIG, UV and KTG are not affected.
``effect=0`` means no effect, a negative value harm.

The truth is exact, not estimated: the assessed people are simulated a
second time without the effect, with the same random numbers (the random
draws are a hash of seed, person, episode and purpose), so their lives are
identical up to the assessment and differ only through the effect
afterwards. ``truth`` holds, for each assessed person, both outcomes:

* ``rd_12m`` / ``rd_12m_cf``: the revolving-door outcome of docs/domain.md
  section 5 at T = the assessment day, horizon 12 months (a new transition or
  re-entry within T+1..T+12 months and the BFS revolving-door definition over
  all institutions in the 24 months ending at T+12 months), with and without
  the effect, on the complete simulated spells (beyond ``end`` if needed);
* ``new_spells_24m`` / ``new_spells_24m_cf``: merged ALV, IV and SH spells
  starting within T+1..T+24 months.

The true average effect on the treated is the mean difference
(:meth:`SyntheticPopulation.true_att`).

**Heterogeneous effects** (``generate(..., heterogeneous=True)``): the effect
of an assessment depends on the person's situation on its day --
``min(effect * het_gain * m, 1)`` with a modifier ``m`` that is largest at
moderate severity in a first registration and small in an IV process, after a
year of social assistance or after many earlier spells (``het_*`` fields of
:class:`SwissDefaults`). ``truth["individual_effect"]`` holds each
assessment's effect.

**People at risk** (``generate(..., effect_sample=0.2)``): a random share of
the people is also given a hypothetical assessment on one month's last day on
which they are registered at ALV, IV or SH and not yet assessed, and
simulated a second time with it (common random numbers, as the assessed).
For them ``effect_sample`` is True, ``sample_date`` is that day, ``rd_12m`` /
``new_spells_24m`` what would have happened with the assessment and
``rd_12m_cf`` / ``new_spells_24m_cf`` what happened: the true individual
effect, against which targeting policies are measured
(:mod:`iizrisk.benefit`). ``truth`` also holds ``severity``,
``immigrant``, ``arrival_date``, ``assessed``, ``assessment_date``,
``effect``, ``hazard_ratio`` and ``effect_months`` for every person.

Parameters
----------
Every number of the model is a field of :class:`SwissDefaults` (documented
there): demography, severity, mortality and relocation; the ``hazards``
tables; ``severity_effects``, ``history_effects``, ``recent_effects`` and
``age_effects``; ALV entitlement; concurrency; assessment propensity and
timing; the other institutions; reporting delays. Change them with
``generate(..., params={"hazards": {"ALV:top_up": (0.002,)}})``.

Dated shocks
------------
For monitoring drills a dated change can be planted in the exported spells
(:class:`Shock`, :func:`apply_shocks`, ``iizrisk synth --shock
KIND:INSTITUTION:YYYY-MM-DD[:SIZE]``): ``slow_exits`` (exits from an
institution slow down by ``SIZE``, default 0.3, from the date) or
``no_exit_reasons`` (an institution stops recording exit reasons from the
date). Both transform the simulated spells after the simulation; the later
life of a person whose spell was stretched is not simulated again (the
simplifications are listed in :func:`slow_down_exits`). No shock is planted
unless asked for.

Determinism and scale
---------------------
The same seed and arguments give the same population and byte-identical
Parquet files. The simulation is vectorised over all persons per episode
(no per-person Python loop) and runs in chunks, so memory stays bounded; the
result does not depend on the chunk size, and the people of
``generate(n)`` are the first ``n`` of ``generate(m)`` for any ``m > n``.
"""

from ._calibration import CALIBRATION_TARGETS, calibration_report
from ._params import AGE_BANDS, BANDS, SwissDefaults
from ._population import SyntheticPopulation, generate, load
from ._random import random_spells
from ._shocks import SHOCK_KINDS, Shock, apply_shocks, slow_down_exits, stop_recording_exit_reasons

__all__ = [
    "AGE_BANDS",
    "BANDS",
    "CALIBRATION_TARGETS",
    "SHOCK_KINDS",
    "Shock",
    "SwissDefaults",
    "SyntheticPopulation",
    "apply_shocks",
    "calibration_report",
    "generate",
    "load",
    "random_spells",
    "slow_down_exits",
    "stop_recording_exit_reasons",
]
