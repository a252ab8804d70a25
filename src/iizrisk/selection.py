"""Model selection over time: rolling-origin evaluation of a grid of specifications, and a stated rule.

One held-out period says little about a model that will run every night
for years while the labour market changes. Following DSaPP's triage
("timechop" and "audition"), :func:`rolling_evaluation` evaluates a grid of
specifications on many as-of splits of a snapshot dataset
(:mod:`iizrisk.snapshots`, built once and read once for the whole grid):

* **Splits.** Origins every ``every_months`` months over the last ``years``
  years of labelled month ends. Split ``s`` evaluates on the month ends of
  ``[origin, origin + test_months)`` and trains only on month ends whose
  label horizon ends strictly before the origin (the rules of
  :func:`iizrisk.model.temporal_split`, applied once per split): no training
  label sees the evaluation period.
* **Grid** (:func:`default_grid`): gradient boosting with three settings, the
  logistic model, the BFS revolving-door rule, "the same list as last time"
  (the reference model's list of the previous month end, kept), and the
  reference boosting model without one feature group at a time (the groups of
  :func:`iizrisk.features.feature_catalogue`).
* **Metrics** per split and specification: precision and recall at
  capacity (``k`` people per as-of date), average precision, ROC AUC, Brier
  score, ECE (:func:`iizrisk.model.evaluate`), and list stability: the
  Jaccard index of the top-k against the previous split's list (at each
  split's first evaluation date) and against the reference specification on
  the same dates. Regret is the distance to the best specification of a split.

:class:`SelectionRule` states how one specification is chosen (for example the
highest mean precision at capacity, subject to ECE <= 0.03 on every split and
a top-k Jaccard against the previous split of at least a bound);
:meth:`SelectionResult.select` applies it and says why, naming the runner-up
and the margin. The baselines (the BFS rule, the last list) are yardsticks:
only specifications that ``iizrisk train`` can train (``Spec.deployable``:
the models, ablations included -- ``train(drop_groups=...)``) are chosen.
``Selection.to_json("selected.json")`` writes the choice that
``iizrisk train --spec selected.json`` trains.

Scores are hints that trigger a human review, never decisions.

Examples
--------
>>> rule = SelectionRule(metric="precision_at_k", max_ece=0.03)
>>> rule.metric, rule.max_ece
('precision_at_k', 0.03)
>>> [s.name for s in default_grid(groups=["history"])][:4]
['boosting', 'boosting_shallow', 'boosting_deep', 'logistic']
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _time
from ._checks import is_real
from ._progress import Steps
from ._results import OutputFigure, OutputTable, ResultMixin
from .config import refuse_ahv_numbers
from .errors import ConfigError, ValidationError, withhold_long_numbers
from .store import write_json_atomic

__all__ = ["Spec", "SelectionRule", "SelectionResult", "Selection", "default_grid", "rolling_splits",
           "check_years", "snapshot_months", "snapshot_dates", "rolling_evaluation", "top_k_mask", "jaccard", "load_spec",
           "person_attributes", "flag_rate_ratios", "FAIRNESS_ATTRIBUTES"]

logger = logging.getLogger("iizrisk")

KINDS = ("boosting", "logistic", "bfs_rule", "last_list")
#: metrics where lower is better (regret and the rule turn them around)
LOWER_IS_BETTER = frozenset({"brier", "ece"})
METRICS = ("precision_at_k", "recall_at_k", "average_precision", "roc_auc", "brier", "ece",
           "jaccard_previous", "jaccard_reference")
_MODEL_PARAMS = frozenset({"max_iter", "learning_rate", "max_leaf_nodes", "max_depth", "min_samples_leaf",
                           "l2_regularization", "early_stopping", "C", "calibration"})


# ------------------------------------------------------------------ specifications
@dataclass(frozen=True)
class Spec:
    """One model specification of the grid.

    Parameters
    ----------
    name : str
    kind : {"boosting", "logistic", "bfs_rule", "last_list"}
    params : dict
        :class:`iizrisk.model.RiskModel` parameters (``max_iter``, ``max_depth``, ``C``...).
    drop_groups : tuple of str
        Feature groups left out (an ablation).
    """

    name: str
    kind: str = "boosting"
    params: dict[str, Any] = field(default_factory=dict)
    drop_groups: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(withhold_long_numbers(
                f"spec {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}"))
        bad = sorted(map(str, set(self.params) - _MODEL_PARAMS))
        if bad:
            raise ConfigError(withhold_long_numbers(f"spec {self.name!r}: unknown model parameter(s) {bad}; known: "
                                                    f"{sorted(_MODEL_PARAMS)}"))

    @property
    def deployable(self) -> bool:
        """True when ``iizrisk train --spec`` can train it: a model (ablations included), not a baseline."""
        return self.kind in ("boosting", "logistic")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "params": dict(self.params),
                "drop_groups": list(self.drop_groups)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Spec:
        """A specification from its :meth:`to_dict` form; a field of the wrong type is refused naming it.

        ``params`` must be a table of names and values and ``drop_groups`` a list of group names: a
        text there was split into its letters (and a text as ``params`` was an internal error).
        """
        if not isinstance(d, dict) or "name" not in d:
            raise ConfigError("a specification needs a name, a kind and params (a table of names and values)")
        name, kind = d["name"], d.get("kind", "boosting")
        params, drop = d.get("params", {}), d.get("drop_groups", ())
        if not isinstance(name, str) or not name or not isinstance(kind, str):
            raise ConfigError("a specification's name and kind must be texts, e.g. \"name\": \"boosting\", "
                              "\"kind\": \"boosting\"")
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise ConfigError(withhold_long_numbers(
                f"spec {name!r}: params must be a table of parameter names and values, e.g. "
                f"{{\"max_iter\": 60}}; got {type(params).__name__}"))
        if not isinstance(drop, list | tuple) or not all(isinstance(g, str) for g in drop):
            raise ConfigError(withhold_long_numbers(
                f"spec {name!r}: drop_groups must be a list of feature group names, e.g. [\"history\"]; got "
                f"{type(drop).__name__}"))
        return cls(name=name, kind=kind, params=dict(params), drop_groups=tuple(drop))


def default_grid(groups=None) -> list[Spec]:
    """Boosting with three settings, logistic, the BFS rule, the last list, and one ablation per group.

    ``groups`` default the groups of :func:`iizrisk.features.feature_catalogue`.
    """
    if groups is None:
        from .features import feature_catalogue

        groups = sorted(feature_catalogue()["group"].unique())
    grid = [Spec("boosting"),
            Spec("boosting_shallow", params={"max_iter": 60, "max_depth": 2}),
            Spec("boosting_deep", params={"max_iter": 200, "max_depth": 5, "learning_rate": 0.05}),
            Spec("logistic", "logistic"), Spec("bfs_rule", "bfs_rule"), Spec("last_list", "last_list")]
    grid += [Spec(f"boosting_without_{g}", drop_groups=(g,)) for g in groups]
    return grid


def load_spec(path: str | Path, *, outcome: str | None = None, horizon_months: int | None = None) -> Spec:
    """The chosen specification of a ``selected.json`` written by :meth:`Selection.to_json`.

    Parameters
    ----------
    path : str or Path
        The ``selected.json``.
    outcome, horizon_months : optional
        What the model about to be trained predicts: a choice made for another outcome or horizon is
        refused (:class:`~iizrisk.errors.ConfigError`), as is a file whose choice lacks its kind.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file; write it with `iizrisk select`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{p}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or "spec" not in data:
        raise ValidationError(f"{p}: holds no 'spec'; it is not a selection written by `iizrisk select`")
    if not isinstance(data["spec"], dict) or not {"name", "kind"} <= set(data["spec"]):
        raise ConfigError(f"{p}: the chosen specification lacks its name or kind; write the file anew with "
                          "`iizrisk select`")
    try:
        spec = Spec.from_dict(data["spec"])
    except ConfigError as exc:  # the file to fix, not only the field
        raise ConfigError(f"{p}: {exc}; write the file anew with `iizrisk select`") from None
    for key, wanted in (("outcome", outcome), ("horizon_months", horizon_months)):
        if wanted is not None and data.get(key) is not None and data[key] != wanted:
            raise ConfigError(withhold_long_numbers(
                f"{p}: the choice was made for {key} {data[key]!r}, not {wanted!r}; train with "
                f"--{key.replace('_', '-')} {data[key]}, or select anew for {wanted!r}"))
    if not spec.deployable:
        raise ConfigError(withhold_long_numbers(
            f"{p}: the specification {spec.name!r} ({spec.kind}, without {list(spec.drop_groups)}) cannot be "
            "trained by `iizrisk train`"))
    if spec.drop_groups:  # before the features are built, not after
        from .features import feature_catalogue

        groups = sorted(feature_catalogue()["group"].unique())
        unknown = sorted(set(spec.drop_groups) - set(groups))
        if unknown:
            raise ConfigError(withhold_long_numbers(
                f"{p}: the specification {spec.name!r} leaves out unknown feature group(s) {unknown}; groups: "
                f"{groups}; write the file anew with `iizrisk select`"))
    return spec


# ------------------------------------------------------------------ the rule
@dataclass(frozen=True)
class SelectionRule:
    """How one specification is chosen from the rolling evaluation.

    Parameters
    ----------
    metric : str, default "precision_at_k"
        Ranked by its mean over the splits (lower first for ``brier``/``ece``).
    max_ece : float or None, default 0.03
        Every split's ECE must be at most this.
    min_jaccard : float or None, default None
        Every split's top-k Jaccard against the previous split must be at least this.
    reference : str, default "boosting"
        The current default (compared with the choice on the last split).
    min_flag_ratio : float or None, default None
        The flag rate of every protected group over its reference group's (pooled over the splits,
        :meth:`SelectionResult.fairness_ratios`) must lie in ``[min_flag_ratio, 1 / min_flag_ratio]``
        (0.8: the four-fifths rule of :class:`iizrisk.fairness_rule.FairnessRule`). A point estimate:
        the audit (``iizrisk audit``) judges the chosen model with confidence intervals.
    hold_last_split : bool, default True
        A challenger (any specification but ``reference``) is eligible only if it is not worse than
        the reference on the last split: a better mean earned on old splits does not replace a
        default that works better now. False: the mean alone decides.

    A TOML file states it in a ``[selection]`` table::

        [selection]
        metric = "precision_at_k"
        max_ece = 0.03
        min_jaccard = 0.2
        min_flag_ratio = 0.5
    """

    metric: str = "precision_at_k"
    max_ece: float | None = 0.03
    min_jaccard: float | None = None
    reference: str = "boosting"
    min_flag_ratio: float | None = None
    hold_last_split: bool = True

    def __post_init__(self):
        refuse_ahv_numbers({"selection": {k: v for k, v in asdict(self).items() if isinstance(v, str)}},
                           "selection rule")
        if self.metric not in METRICS:
            raise ConfigError(f"[selection] metric = {self.metric!r}: choose one of {list(METRICS)}")
        for name in ("max_ece", "min_jaccard", "min_flag_ratio"):
            v = getattr(self, name)
            if v is not None and (not is_real(v) or not 0 <= v <= 1):
                raise ConfigError(f"[selection] {name} = {v!r}: a number from 0 to 1")
        if not isinstance(self.reference, str) or not self.reference.strip():
            raise ConfigError(f"[selection] reference = {self.reference!r}: the name of a specification, e.g. "
                              "\"boosting\"")
        if not isinstance(self.hold_last_split, bool):
            raise ConfigError(f"[selection] hold_last_split = {self.hold_last_split!r}: true or false")
        if self.min_flag_ratio == 0:
            raise ConfigError("[selection] min_flag_ratio = 0: a ratio bound above 0 (0.8 is the four-fifths rule)")

    @classmethod
    def from_toml(cls, path: str | Path) -> SelectionRule:
        """The ``[selection]`` table of a TOML file."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: not UTF-8 text; give a TOML file with a [selection] table") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from exc
        refuse_ahv_numbers(data, str(p))  # a reference is copied into selected.json
        table = data.get("selection")
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: no [selection] table; see iizrisk.selection.SelectionRule")
        known = {"metric", "max_ece", "min_jaccard", "reference", "min_flag_ratio", "hold_last_split"}
        bad = sorted(set(table) - known)
        if bad:
            raise ConfigError(f"{p}: [selection] unknown setting(s) {bad}; known: {sorted(known)}")
        return cls(**table)


# ------------------------------------------------------------------ splits and lists
def rolling_splits(dates, *, every_months: int = 3, years: int = 2, test_months: int = 3,
                   gap_months: int = 12, train_months: int = 36, calibration_months: int = 6,
                   horizon_months: int = 12, observed_until=None) -> pd.DataFrame:
    """The as-of splits: one row per split with its training and evaluation month ends.

    Evaluation dates of split ``s`` are the labelled month ends of ``test_months`` calendar months;
    a training date's horizon (``gap_months``) ends strictly before the first of them (the rule of
    :func:`iizrisk.model.temporal_split`)
    and start at most ``train_months + gap + calibration_months`` months earlier.

    Returns
    -------
    DataFrame
        ``split``, ``origin``, ``train_dates`` and ``test_dates`` (lists of Timestamps).
    """
    if min(every_months, years, test_months) < 1:
        raise ConfigError("every_months, years and test_months must be at least 1")
    ds = sorted(pd.Timestamp(d) for d in dates)
    if observed_until is not None:
        last_obs = _time.day(pd.Timestamp(observed_until))
        ds = [d for d in ds if int(_time.add_months(_time.day(d), horizon_months)) <= last_obs]
    if len(ds) < 3:
        raise ValidationError("too few labelled as-of dates for a rolling evaluation")
    days = np.array([_time.day(d) for d in ds], dtype=np.int64)
    last = ds[-1]
    oldest = last - pd.offsets.MonthEnd(12 * years)
    rows = []
    # origins from the latest backwards, in whole calendar months: the last split ends at the last labelled date
    for i in range(12 * years // every_months + 1):
        end = last - pd.offsets.MonthEnd(i * every_months) if i else last
        start = end - pd.offsets.MonthEnd(test_months)
        if start < oldest:
            break
        late = (days > _time.day(start)) & (days <= _time.day(end))
        if not late.any():
            continue
        first_test = int(days[late].min())
        # the rule of iizrisk.model.temporal_split: a training date's horizon ends before the first test date
        early = _time.add_months(days, gap_months).astype(np.int64) < first_test
        span = train_months + gap_months + calibration_months
        early &= days >= int(_time.add_months(first_test, -(span + gap_months)))
        if early.sum() < 3:
            break
        if calibration_months > 0:  # the model's calibration slice (temporal_split) needs dates before it too
            tr = days[early]
            if not (tr <= int(_time.add_months(int(tr.max()), -calibration_months))).any():
                break
        rows.append({"origin": pd.Timestamp(_time.to_date(first_test)),
                     "train_dates": [d for d, e in zip(ds, early, strict=True) if e],
                     "test_dates": [d for d, e in zip(ds, late, strict=True) if e]})
    if not rows:
        raise ValidationError(f"no split fits: {len(days)} labelled month ends cannot hold {train_months} "
                              f"training months, a gap of {gap_months} and {test_months} evaluation months; "
                              "build snapshots for more month ends or shorten the periods")
    out = pd.DataFrame(rows[::-1])
    out.insert(0, "split", np.arange(len(out)))
    return out


def check_years(dates, *, years: int, horizon_months: int, observed_until=None) -> None:
    """Refuse ``years`` of splits reaching back before the first labelled month end (``--years``; exit 2).

    :func:`rolling_splits` leaves out the splits the data cannot hold; a number of years beyond
    every labelled month end is a mistake of the option, named before any work with the period the
    labelled month ends cover and the most years they allow.

    Raises
    ------
    ConfigError
    """
    ds = sorted(pd.Timestamp(d) for d in dates)
    if observed_until is not None:
        last_obs = _time.day(pd.Timestamp(observed_until))
        ds = [d for d in ds if int(_time.add_months(_time.day(d), horizon_months)) <= last_obs]
    if len(ds) < 3:
        return  # rolling_splits says why nothing fits
    first, last = ds[0], ds[-1]
    if last - pd.offsets.MonthEnd(12 * int(years)) >= first:
        return
    months = (last.year - first.year) * 12 + last.month - first.month
    most = months // 12
    fix = (f"give --years {most} or fewer" if most >= 1 else
           "build snapshots for more month ends (`iizrisk snapshots --from/--to`)")
    raise ConfigError(
        f"--years {years}: the splits would reach back {12 * int(years)} months before the last labelled month "
        f"end, but the labelled month ends (whose {horizon_months}-month outcome is observed) cover "
        f"{first.date()} to {last.date()} ({months} months); {fix}")


def snapshot_months(*, every_months: int = 3, years: int = 2, test_months: int = 3, train_months: int = 36,
                    calibration_months: int = 6, horizon_months: int = 12, gap_months: int | None = None) -> int:
    """How many labelled month ends :func:`rolling_splits` can use: the latest ones, up to the last labelled.

    The oldest split evaluates from ``years`` years (less the rest of ``every_months``) before the
    last labelled month end, and trains back to ``train_months + calibration_months`` and two gaps
    before its first evaluation date; older month ends are never used. With the defaults 90,
    against the 73 that ``iizrisk train`` uses by default (``train_months + validation_months +
    calibration_months`` and two gaps).

    >>> snapshot_months()
    90
    """
    if min(every_months, years, test_months) < 1:
        raise ConfigError("every_months, years and test_months must be at least 1")
    gap = horizon_months if gap_months is None else int(gap_months)
    evaluated = max(12 * years - test_months, 0) // every_months * every_months + test_months
    return int(evaluated + train_months + 2 * gap + calibration_months)


def snapshot_dates(spells: pd.DataFrame, *, every_months: int = 3, years: int = 2, test_months: int = 3,
                   train_months: int = 36, calibration_months: int = 6, horizon_months: int = 12,
                   gap_months: int | None = None, burn_in_months: int = 24) -> list[pd.Timestamp]:
    """The month ends :func:`rolling_evaluation` uses with these settings: the default of ``iizrisk select --spells``.

    The last :func:`snapshot_months` month ends whose horizon the data observe, and none within
    ``burn_in_months`` of the first start (:func:`iizrisk.snapshots.default_dates`, which refuses
    an export too short with its period): the same rule as ``iizrisk train``'s default (its last
    labelled months, after the burn-in), not every month end since the first spell. A log line
    names the range. Other month ends: ``iizrisk snapshots --from/--to``, then ``select --snapshots``.
    """
    from .snapshots import default_dates

    months = snapshot_months(every_months=every_months, years=years, test_months=test_months,
                             train_months=train_months, calibration_months=calibration_months,
                             horizon_months=horizon_months, gap_months=gap_months)
    dates = default_dates(spells, burn_in_months=burn_in_months, horizon_months=horizon_months, latest=months)
    logger.info("select: snapshots at %d month ends, %s to %s: the latest (at most %d) whose %d-month horizon is "
                "observed (splits over the last %d months, %d training months each), not within %d months of the "
                "first start; `iizrisk snapshots --from/--to` and `select --snapshots` for others", len(dates),
                dates[0].date(), dates[-1].date(), months, horizon_months, 12 * years, train_months, burn_in_months)
    return dates


def top_k_mask(score, as_of_days, *, k: int, random_state: int = 0) -> np.ndarray:
    """True for the ``k`` highest scores of each as-of date (ties broken as in ``precision_recall_at_k``).

    >>> top_k_mask([0.1, 0.9, 0.5, 0.7], [1, 1, 2, 2], k=1).tolist()
    [False, True, False, True]
    """
    s = np.asarray(score, dtype=np.float64)
    d = np.asarray(as_of_days)
    tie = np.random.default_rng(random_state).random(len(s))
    order = np.lexsort((tie, -s, d))
    ds = d[order]
    first = np.r_[0, np.flatnonzero(ds[1:] != ds[:-1]) + 1] if len(ds) else np.zeros(0, np.int64)
    rank = np.arange(len(ds)) - np.repeat(first, np.diff(np.r_[first, len(ds)]))
    out = np.zeros(len(s), dtype=bool)
    out[order[rank < k]] = True
    return out


def jaccard(a, b) -> float:
    """Jaccard index of two sets of ids (1.0 when both are empty).

    >>> jaccard(["a", "b"], ["b", "c"])
    0.3333333333333333
    """
    a, b = np.unique(np.asarray(a, dtype=object).astype(str)), np.unique(np.asarray(b, dtype=object).astype(str))
    union = len(np.union1d(a, b))
    return 1.0 if union == 0 else len(np.intersect1d(a, b)) / union


def _jaccard_per_date(m1: np.ndarray, m2: np.ndarray, days: np.ndarray) -> float:
    """Mean over dates of the Jaccard index of two top-k masks on the same rows."""
    codes, _ = pd.factorize(days)
    inter = np.bincount(codes, weights=(m1 & m2), minlength=codes.max() + 1 if len(codes) else 0)
    union = np.bincount(codes, weights=(m1 | m2), minlength=codes.max() + 1 if len(codes) else 0)
    return float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0))) if len(union) else np.nan


# ------------------------------------------------------------------ the result
@dataclass
class Selection:
    """The specification a :class:`SelectionRule` chose, the runner-up, the margin and why."""

    chosen: Spec
    runner_up: Spec | None
    margin: float
    why: str
    table: pd.DataFrame
    rule: SelectionRule
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "iizrisk-selection/1", "spec": self.chosen.to_dict(),
                "runner_up": None if self.runner_up is None else self.runner_up.to_dict(),
                "margin": self.margin, "why": self.why, "rule": asdict(self.rule), **self.info,
                "candidates": json.loads(self.table.reset_index().to_json(orient="records"))}

    def to_json(self, path: str | Path) -> Path:
        """Write ``selected.json`` (what ``iizrisk train --spec`` reads)."""
        return write_json_atomic(self.to_dict(), Path(path))

    def __str__(self) -> str:
        return self.why


@dataclass
class SelectionResult(ResultMixin):
    """Metrics of every specification on every split (:func:`rolling_evaluation`).

    Attributes
    ----------
    metrics : DataFrame
        One row per (``split``, ``spec``): the metrics of :data:`METRICS`, ``n``,
        ``prevalence``, ``k``, ``origin``.
    splits : DataFrame
        The splits (:func:`rolling_splits`).
    specs : list of Spec
    jaccard_between : DataFrame
        Mean top-k Jaccard between every pair of specifications on the last split.
    info : dict
    crosstab : DataFrame or None
        The reference specification's top-k against the rest on the last split, feature by feature.
    fairness : DataFrame or None
        Rows and flagged rows per (``split``, ``spec``, ``attribute``, ``group``); the metrics hold each
        split's ``flag_ratio_<attribute>`` and :meth:`fairness_ratios` pools them over the splits.
    """

    metrics: pd.DataFrame
    splits: pd.DataFrame
    specs: list[Spec]
    jaccard_between: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    crosstab: pd.DataFrame | None = None
    fairness: pd.DataFrame | None = None

    def fairness_ratios(self) -> pd.DataFrame:
        """Flag-rate ratios against each attribute's reference group, pooled over the splits, per spec.

        Columns as :func:`flag_rate_ratios` plus ``spec``; groups smaller than the evaluation's
        ``fairness_min_group`` (pooled) are left out.
        """
        if self.fairness is None or not len(self.fairness):
            return pd.DataFrame(columns=["spec", "attribute", "group", "reference", "n", "flagged", "flag_rate",
                                         "ratio", "worst"])
        mg = int(self.info.get("fairness_min_group", 30))
        frames = [flag_rate_ratios(g, min_group=mg).assign(spec=name)
                  for name, g in self.fairness.groupby("spec", sort=False)]
        out = pd.concat(frames, ignore_index=True)
        return out[["spec", *[c for c in out.columns if c != "spec"]]]

    def _pooled_worst(self) -> pd.DataFrame:
        """spec x ``flag_ratio_<attribute>``: the worst pooled ratio per attribute."""
        r = self.fairness_ratios()
        if not len(r):
            return pd.DataFrame()
        w = r[r["worst"]].pivot(index="spec", columns="attribute", values="ratio")
        return w.rename(columns=lambda a: f"flag_ratio_{a}")

    def regret(self, metric: str = "precision_at_k") -> pd.DataFrame:
        """Distance to the best specification of each split (0 = best); splits x specs."""
        wide = self.metrics.pivot(index="split", columns="spec", values=metric)
        if metric in LOWER_IS_BETTER:
            return wide.sub(wide.min(axis=1), axis=0)
        return (-wide).add(wide.max(axis=1), axis=0)

    @property
    def summary(self) -> pd.DataFrame:
        """Mean of every metric over the splits, the worst split's ECE and Jaccard, the mean regret, and the
        worst flag-rate ratio per protected attribute pooled over the splits (``flag_ratio_<attribute>``)."""
        g = self.metrics.groupby("spec", sort=False)
        out = g[[m for m in METRICS if m in self.metrics.columns]].mean()
        out["worst_ece"] = g["ece"].max()
        out["worst_jaccard_previous"] = g["jaccard_previous"].min()
        out["mean_regret"] = self.regret().mean()
        out["splits"] = g.size()
        fair = self._pooled_worst()
        if len(fair):  # pooled over the splits: one split's few listed people say little
            out = out.join(fair)
        return out.sort_values("precision_at_k", ascending=False)

    def _title(self) -> str:
        i = self.info
        return (f"Rolling evaluation: {len(self.splits)} splits x {len(self.specs)} specifications, outcome "
                f"{i.get('outcome')}, horizon {i.get('horizon_months')} months, capacity {i.get('k')} per as-of date")

    def select(self, rule: SelectionRule | None = None) -> Selection:
        """Apply ``rule`` to the deployable specifications; explain the choice.

        Raises
        ------
        ValidationError
            No specification meets the rule's constraints (the message says which failed where).
        """
        rule = rule or SelectionRule()
        summ = self.summary
        deploy = [s.name for s in self.specs if s.deployable]
        table = summ.loc[[n for n in summ.index if n in deploy]].copy()
        if not len(table):
            raise ValidationError(
                f"the evaluation holds no specification that can be deployed, only the yardsticks "
                f"{list(summ.index)}: add a boosting or logistic specification (--specs)")
        reasons: dict[str, list[str]] = {n: [] for n in table.index}
        if rule.max_ece is not None:
            for n in table.index:
                if table.loc[n, "worst_ece"] > rule.max_ece:
                    bad = self.metrics[(self.metrics["spec"] == n) & (self.metrics["ece"] > rule.max_ece)]
                    reasons[n].append(f"ECE {table.loc[n, 'worst_ece']:.3f} > {rule.max_ece} on split(s) "
                                      f"{bad['split'].tolist()}")
        if rule.min_jaccard is not None:
            for n in table.index:
                w = table.loc[n, "worst_jaccard_previous"]
                if pd.notna(w) and w < rule.min_jaccard:
                    reasons[n].append(f"top-k Jaccard against the previous split {w:.2f} < {rule.min_jaccard}")
        fair_cols = [c for c in table.columns if str(c).startswith("flag_ratio_")]
        if rule.min_flag_ratio is not None:
            lo, hi = float(rule.min_flag_ratio), 1.0 / float(rule.min_flag_ratio)
            for n in table.index:
                for c in fair_cols:
                    v = table.loc[n, c]
                    if pd.notna(v) and not lo <= v <= hi:
                        reasons[n].append(f"flag-rate ratio {v:.2f} by {c[len('flag_ratio_'):]} outside "
                                          f"[{lo:.2f}, {hi:.2f}]")
        asc = rule.metric in LOWER_IS_BETTER
        last = self.metrics[self.metrics["split"] == self.metrics["split"].max()].set_index("spec")
        if rule.hold_last_split and rule.reference in last.index:
            ref = float(last.loc[rule.reference, rule.metric])
            for n in table.index:
                if n != rule.reference and n in last.index and pd.notna(ref):
                    v = float(last.loc[n, rule.metric])
                    if (v > ref) if asc else (v < ref):
                        reasons[n].append(f"{rule.metric} {v:.3f} on the last split, worse than the current "
                                          f"default {rule.reference} ({ref:.3f})")
        table["eligible"] = [not reasons[n] for n in table.index]
        table["excluded_because"] = ["; ".join(reasons[n]) for n in table.index]
        table = table.sort_values(["eligible", rule.metric], ascending=[False, asc])
        ok = table[table["eligible"]]
        if not len(ok):
            raise ValidationError("no specification meets the selection rule: "
                                  + " | ".join(f"{n}: {r}" for n, r in table["excluded_because"].items()))
        best = ok.index[0]
        second = ok.index[1] if len(ok) > 1 else None
        margin = float(abs(ok.loc[best, rule.metric] - ok.loc[second, rule.metric])) if second else float("nan")
        spec = {s.name: s for s in self.specs}
        words = "lowest" if asc else "highest"
        why = [f"Chosen: {best} — the {words} mean {rule.metric} over {len(self.splits)} splits "
               f"({ok.loc[best, rule.metric]:.3f})"]
        cons = []
        if rule.max_ece is not None:
            cons.append(f"ECE <= {rule.max_ece} on every split (worst {ok.loc[best, 'worst_ece']:.3f})")
        if rule.min_jaccard is not None:
            cons.append(f"top-k Jaccard against the previous split >= {rule.min_jaccard} "
                        f"(worst {ok.loc[best, 'worst_jaccard_previous']:.2f})")
        if rule.hold_last_split and rule.reference in last.index and best != rule.reference:
            cons.append(f"no worse than the current default {rule.reference} on the last split")
        if rule.min_flag_ratio is not None and fair_cols:
            ratios = ", ".join(f"{c[len('flag_ratio_'):]} {ok.loc[best, c]:.2f}" for c in fair_cols
                               if pd.notna(ok.loc[best, c]))
            cons.append(f"flag-rate ratios between protected groups within [{rule.min_flag_ratio:.2f}, "
                        f"{1 / rule.min_flag_ratio:.2f}] pooled over the splits ({ratios or 'none judged'})")
        if cons:
            why[0] += " among those with " + " and ".join(cons)
        why[0] += "."
        if second:
            why.append(f"Runner-up: {second} ({ok.loc[second, rule.metric]:.3f}); margin {margin:.3f}.")
        excluded = table[~table["eligible"]]
        for n, r in excluded["excluded_because"].items():
            why.append(f"Excluded: {n} ({r}).")
        info: dict[str, Any] = {"splits": len(self.splits), "seed": self.info.get("random_state"),
                                "outcome": self.info.get("outcome"),
                                "horizon_months": self.info.get("horizon_months")}
        if rule.reference in last.index and best in last.index:
            a, b = float(last.loc[best, rule.metric]), float(last.loc[rule.reference, rule.metric])
            info["last_split"] = {"chosen": a, "reference": b, "reference_spec": rule.reference}
            why.append(f"On the last split ({self.splits['origin'].iloc[-1].date()}): {best} {a:.3f}, "
                       f"the current default {rule.reference} {b:.3f}.")
        base = [n for n in ("bfs_rule", "last_list") if n in summ.index]
        if base:
            why.append("Yardsticks (not candidates): " + ", ".join(
                f"{n} {summ.loc[n, rule.metric]:.3f}" for n in base) + ".")
        return Selection(chosen=spec[best], runner_up=spec[second] if second else None, margin=margin,
                         why=" ".join(why), table=table, rule=rule, info=info)

    # ------------------------------------------------ display and files
    def plot(self, ax=None, *, metric: str = "precision_at_k", regret: bool = False, specs=None,
             language: str = "en"):
        """The metric (or its regret) of each specification by split origin, words in ``language``; returns the
        axes. The legend stands beside the axes (a dozen specifications hid the lines)."""
        from ._texts import check_language, text
        from .plots import _tidy
        from .tables import header

        check_language(language)
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(7, 3.6)).subplots()
        wide = (self.regret(metric) if regret
                else self.metrics.pivot(index="split", columns="spec", values=metric))
        origins = self.splits.set_index("split")["origin"]
        names = [s.name for s in self.specs if s.name in wide.columns and (specs is None or s.name in specs)]
        for n in names:
            style = "--" if n in ("bfs_rule", "last_list") else ("-" if not n.startswith("boosting_without")
                                                                 else ":")
            ax.plot(origins.loc[wide.index], wide[n].to_numpy(dtype=float), style, marker="o", ms=3, label=n)
        words = header(metric, language)
        ax.set_xlabel(text("selection.plot_origin", language))
        ax.set_ylabel(text("selection.plot_regret_axis", language, metric=words) if regret else words)
        ax.set_title(text("selection.plot_regret_title", language) if regret
                     else text("selection.plot_title", language, metric=words), fontsize="medium")
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        _tidy(ax)
        return ax

    def _output_tables(self, k: int) -> list[OutputTable]:
        # metrics over thousands of snapshots per split: no cell counts people, nothing to suppress
        tables = [OutputTable("selection_summary", self.summary.reset_index()),
                  OutputTable("selection_metrics", self.metrics),
                  OutputTable("selection_regret", self.regret().reset_index()),
                  OutputTable("selection_jaccard", self.jaccard_between.reset_index())]
        if self.crosstab is not None:
            tables.append(OutputTable("selection_crosstab", self.crosstab.reset_index()))
        if self.fairness is not None:
            # flag rates of groups of at least fairness_min_group evaluation rows; the flagged counts are
            # pooled over splits and specifications of whole lists (k per date), not people to protect
            fr = self.fairness_ratios()
            small = (fr["flagged"] > 0) & (fr["flagged"] < k)  # a handful of flagged person-months: hidden
            fr[["flagged", "flag_rate", "ratio"]] = fr[["flagged", "flag_rate", "ratio"]].astype(float).mask(
                np.repeat(small.to_numpy()[:, None], 3, axis=1))
            tables.append(OutputTable("selection_fairness", fr))
        return tables

    def _output_figures(self, tables, language: str = "en") -> list[OutputFigure]:
        return [OutputFigure("selection_by_split", self.plot(language=language).figure),
                OutputFigure("selection_regret", self.plot(regret=True, language=language).figure)]


# ------------------------------------------------------------------ the evaluation
def _scorer(spec: Spec, cols: list[str], common: dict[str, Any], bfs_column: str):
    from .model import BfsRuleBaseline, RiskModel

    if spec.kind == "bfs_rule":
        return BfsRuleBaseline(column=bfs_column), [bfs_column]
    return RiskModel(model=spec.kind, **common, **spec.params), cols


def crosstab(X: pd.DataFrame, listed: np.ndarray) -> pd.DataFrame:
    """Every feature's mean among the listed and the rest, and the standardised difference.

    >>> X = pd.DataFrame({"a": [1.0, 1.0, 0.0, 0.0]})
    >>> crosstab(X, np.array([True, True, False, False]))["std_difference"].round(2).tolist()
    [inf]
    """
    a, b = X.loc[listed], X.loc[~listed]
    m1, m0 = a.mean(), b.mean()
    sd = np.sqrt((a.var() + b.var()) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (m1 - m0) / sd
    return pd.DataFrame({"mean_top_k": m1, "mean_rest": m0, "std_difference": d}).rename_axis("feature")


#: protected attributes of the fairness columns (``disability`` from the features, the others from ``attributes``)
FAIRNESS_ATTRIBUTES = ("sex", "nationality_group", "age_band", "disability")


def person_attributes(spells: pd.DataFrame) -> pd.DataFrame:
    """The protected attributes of each person (``sex``, ``nationality_group``, ``birth_year``), index ``person_id``.

    Each person's latest non-missing value by ``start_date`` (the spells' columns that exist).

    >>> rows = pd.DataFrame({"person_id": ["a", "a", "b"], "start_date": pd.to_datetime(["2020-01-01",
    ...                      "2021-01-01", "2020-01-01"]), "sex": ["F", None, "M"], "birth_year": [1980, 1980, 1990]})
    >>> person_attributes(rows).to_dict("index")
    {'a': {'sex': 'F', 'birth_year': 1980}, 'b': {'sex': 'M', 'birth_year': 1990}}
    """
    cols = [c for c in ("sex", "nationality_group", "birth_year") if c in spells.columns]
    if not cols:
        return pd.DataFrame(index=pd.Index([], name="person_id", dtype="str"))
    order = np.argsort(_time.to_days(spells["start_date"]), kind="stable")
    rows = spells.iloc[order]
    out = rows[cols].groupby(rows["person_id"].astype(str).to_numpy(), sort=True).last()
    for c in ("sex", "nationality_group"):
        if c in out.columns:
            out[c] = out[c].astype(object).where(out[c].notna(), None)
    out.index.name = "person_id"
    return out


def _protected_groups(X: pd.DataFrame, ids: np.ndarray, days: np.ndarray,
                      attributes: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Each protected attribute's group label per row (object arrays; None when unknown)."""
    from .fairness import AGE_BAND_EDGES, DISABILITY_PROXY

    out: dict[str, np.ndarray] = {}
    if attributes is not None and len(attributes):
        a = attributes.reindex(pd.Index(np.asarray(ids, dtype=object).astype(str)))
        for c in ("sex", "nationality_group"):
            if c in a.columns:
                out[c] = a[c].astype(object).where(a[c].notna(), None).to_numpy()
        if "birth_year" in a.columns:
            by = pd.to_numeric(a["birth_year"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            year = pd.DatetimeIndex(_time.from_days(np.asarray(days))).year.to_numpy()
            age = year - by
            edges = np.asarray(AGE_BAND_EDGES, dtype=np.float64)
            labels = np.array([f"<{AGE_BAND_EDGES[0]}"] + [f"{lo}-{hi - 1}" for lo, hi in
                                                           zip(AGE_BAND_EDGES[:-1], AGE_BAND_EDGES[1:], strict=True)]
                              + [f"{AGE_BAND_EDGES[-1]}+"], dtype=object)
            band = labels[np.searchsorted(edges, np.nan_to_num(age, nan=0.0), side="right")]
            band[np.isnan(age)] = None
            out["age_band"] = band
    if {"open_iv", "n_spells_iv_60m"} <= set(X.columns):
        iv = (X["open_iv"].to_numpy(dtype=np.float64, na_value=0) > 0) | \
             (X["n_spells_iv_60m"].to_numpy(dtype=np.float64, na_value=0) > 0)
        out["disability"] = np.where(iv, DISABILITY_PROXY[0], DISABILITY_PROXY[1]).astype(object)
    return {k: out[k] for k in FAIRNESS_ATTRIBUTES if k in out}


def _group_counts(mask: np.ndarray, groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """Rows and flagged rows per attribute and group (unknown values left out)."""
    frames = []
    for attr, g in groups.items():
        known = pd.notna(g) & (g != None)  # noqa: E711 - object arrays hold None
        codes, labels = pd.factorize(pd.Series(g[known]).astype(str), sort=True)
        frames.append(pd.DataFrame({"attribute": attr, "group": np.asarray(labels, dtype=object),
                                    "n": np.bincount(codes, minlength=len(labels)),
                                    "flagged": np.bincount(codes, weights=mask[known].astype(np.float64),
                                                           minlength=len(labels)).astype(np.int64)}))
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=["attribute", "group", "n", "flagged"]))


def flag_rate_ratios(counts: pd.DataFrame, *, min_group: int = 30) -> pd.DataFrame:
    """Per attribute: every group's flag rate over the reference group's (the largest group, as the audit).

    Groups with fewer than ``min_group`` rows are left out (their rate says little). The ratio is
    NaN when the reference flags no one. ``worst`` is, per attribute, the ratio furthest from 1 on
    the log scale (the one a bound ``[min_ratio, 1 / min_ratio]`` meets first).

    Returns
    -------
    DataFrame
        ``attribute``, ``group``, ``reference``, ``n``, ``flagged``, ``flag_rate``, ``ratio``,
        ``worst`` (bool).

    Examples
    --------
    >>> c = pd.DataFrame({"attribute": ["sex", "sex"], "group": ["F", "M"], "n": [400, 600],
    ...                   "flagged": [4, 12]})
    >>> flag_rate_ratios(c)[["group", "reference", "ratio"]].to_dict("records")
    [{'group': 'F', 'reference': 'M', 'ratio': 0.5}]
    """
    c = counts.groupby(["attribute", "group"], as_index=False, sort=True)[["n", "flagged"]].sum()
    c = c[c["n"] >= min_group].copy()
    if not len(c):
        return pd.DataFrame(columns=["attribute", "group", "reference", "n", "flagged", "flag_rate", "ratio", "worst"])
    c["flag_rate"] = c["flagged"] / c["n"]
    ref = c.sort_values(["attribute", "n", "group"], ascending=[True, False, True]).groupby("attribute").head(1)
    ref = ref.set_index("attribute")
    c["reference"] = c["attribute"].map(ref["group"])
    base = c["attribute"].map(ref["flag_rate"]).to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        c["ratio"] = np.where(base > 0, c["flag_rate"].to_numpy() / base, np.nan)
    c = c[c["group"] != c["reference"]].reset_index(drop=True)
    with np.errstate(divide="ignore"):
        far = np.abs(np.log(c["ratio"].to_numpy(dtype=np.float64)))
    c["_far"] = np.where(np.isnan(far), -1.0, far)
    c["worst"] = False
    if len(c):
        c.loc[c.groupby("attribute")["_far"].idxmax(), "worst"] = True
    return c.drop(columns="_far")[["attribute", "group", "reference", "n", "flagged", "flag_rate", "ratio", "worst"]]


def _worst_ratios(counts: pd.DataFrame, min_group: int) -> dict[str, float]:
    """``{"flag_ratio_<attribute>": worst ratio}`` of one set of counts."""
    r = flag_rate_ratios(counts, min_group=min_group)
    w = r[r["worst"]].set_index("attribute")["ratio"]
    return {f"flag_ratio_{a}": float(w[a]) if a in w.index else np.nan
            for a in counts["attribute"].unique()} if len(counts) else {}


def _check_split(split, y_train: np.ndarray, n_test: int, n_persons: int, max_persons: int | None) -> None:
    """Refuse a split its models cannot learn from or be judged on, naming the split and the fix."""
    positives = int(y_train.sum())
    if 0 < positives < len(y_train) and n_test > 0:
        return
    sample = f" (--max-persons {max_persons})" if max_persons is not None else ""
    raise ValidationError(
        f"split {int(split['split'])} (origin {pd.Timestamp(split['origin']).date()}) cannot be evaluated: "
        f"{len(y_train)} training row(s) with an observed outcome, {positives} of them positive, and "
        f"{n_test} evaluation row(s), from {n_persons} person(s){sample}. Each split needs training rows "
        "with and without the outcome and rows to evaluate; use more persons, or fewer --years or "
        "--test-months so that the splits fall where outcomes are observed")


def check_grid(grid: list[Spec]) -> None:
    """Refuse a grid the rolling evaluation cannot choose from (exit 2), before any snapshot is read.

    A grid needs a boosting or logistic specification: only those can be chosen, and the
    ``last_list`` yardstick carries the first of them forward. An empty grid, one of yardsticks
    only, or one naming a specification twice is refused naming the fix.

    Raises
    ------
    ConfigError
    """
    names = [s.name for s in grid]
    if not names:
        raise ConfigError("the grid holds no specification: name at least one boosting or logistic "
                          "specification (--specs), e.g. boosting,logistic")
    if len(set(names)) != len(names):
        raise ConfigError(withhold_long_numbers(f"the grid names a specification twice: {names}"))
    if not any(s.deployable for s in grid):
        carried = " ('last_list' carries a model's list forward)" if "last_list" in names else ""
        raise ConfigError(withhold_long_numbers(
            f"the grid holds only the yardsticks {names}, which cannot be chosen{carried}: add a boosting or "
            f"logistic specification (--specs), e.g. {','.join([*names, 'boosting'])}"))


def rolling_evaluation(snapshots, *, grid: list[Spec] | None = None, every_months: int = 3, years: int = 2,
                       test_months: int = 3, train_months: int = 36, calibration_months: int = 6,
                       gap_months: int | None = None, capacity: int = 50, max_persons: int | None = None,
                       random_state: int = 0, n_threads: int | None = None, max_train_rows: int | None = None,
                       progress: bool | None = None, attributes: pd.DataFrame | None = None,
                       fairness_min_group: int = 30) -> SelectionResult:
    """Evaluate a grid of specifications on rolling as-of splits of a snapshot dataset.

    Parameters
    ----------
    snapshots : SnapshotSet or path
        Built once (:func:`iizrisk.snapshots.build_snapshots`); read once for the whole grid.
    grid : list of Spec, optional
        Default :func:`default_grid`.
    every_months, years, test_months : int
        Origins every ``every_months`` months over the last ``years`` years; each split is evaluated
        on ``test_months`` month ends.
    train_months, calibration_months : int
        Months of training month ends before the calibration slice; the calibration slice.
    gap_months : int, optional
        Default the dataset's horizon.
    capacity : int, default 50
        People reviewed per as-of date (k); with ``max_persons`` taken at ``k x fraction``.
    max_persons : int, optional
        A fixed random sample of persons (all their snapshots), as :func:`iizrisk.model.train`.
    random_state : int, default 0
        The seed of every model: the same seed gives the same result.
    n_threads : int, optional
        Threads per model fit.
    max_train_rows : int, optional
        Each split's models learn from a random sample of at most this many of its training rows
        (the split's number is added to the seed; calibration and evaluation rows are not sampled):
        the fits' time stops growing with the population, as ``iizrisk train --max-train-rows``.
    attributes : DataFrame, optional
        Protected attributes per person (:func:`person_attributes`: ``sex``, ``nationality_group``,
        ``birth_year``, index ``person_id``). With them, and always for the disability proxy (an IV
        registration open or within 60 months, from the features), each split and specification gets
        ``flag_ratio_<attribute>``: the flag rate (share in the top-k) of the group furthest from its
        reference group (the largest), over the reference's. Groups of fewer than
        ``fairness_min_group`` evaluation rows are left out.
    fairness_min_group : int, default 30

    Returns
    -------
    SelectionResult
    """
    from .model import evaluate
    from .model._training import _bounded, _snapshot_frame
    from .snapshots import SnapshotSet

    grid = list(grid) if grid is not None else default_grid()
    check_grid(grid)
    snaps = snapshots if isinstance(snapshots, SnapshotSet) else SnapshotSet.open(snapshots)
    horizon = int(snaps.meta["horizon_months"])
    gap = horizon if gap_months is None else int(gap_months)
    splits = rolling_splits(snaps.dates, every_months=every_months, years=years, test_months=test_months,
                            gap_months=gap, train_months=train_months, calibration_months=calibration_months,
                            horizon_months=horizon, observed_until=snaps.meta["observed_until"])
    model_specs = [s for s in grid if s.kind in ("boosting", "logistic")]
    reference = model_specs[0] if model_specs else None
    # every date needed, and for the last-list baseline the month end before each evaluation date
    all_dates = snaps.dates
    prev_of = {d: all_dates[i - 1] for i, d in enumerate(all_dates) if i > 0}
    need = set()
    for _, r in splits.iterrows():
        need |= set(r["train_dates"]) | set(r["test_dates"])
        need |= {prev_of[d] for d in r["test_dates"] if d in prev_of}
    dates = sorted(need)
    X, lab, sample = _snapshot_frame(snaps, dates, max_persons, random_state)
    k = capacity if sample is None else max(1, int(round(capacity * sample["fraction"])))
    from .model._training import columns_without

    ft = snaps.features()
    model_columns: dict[str, list[str]] = {}
    for s in grid:
        try:
            model_columns[s.name] = columns_without(ft, list(X.columns), s.drop_groups)
        except ConfigError as exc:
            raise ConfigError(f"spec {s.name!r}: {exc}") from None
    bfs_column = f"revolving_door_{int(ft.bfs_window_months)}m"
    days = _time.to_days(pd.Series(X.index.get_level_values("as_of"))).astype(np.int64)
    ids = np.asarray(X.index.get_level_values("person_id"), dtype=object)
    y_all = lab["outcome"].to_numpy(dtype=bool, na_value=False)
    observed = lab["observed"].to_numpy(dtype=bool)
    common = dict(calibration_months=calibration_months, gap_months=gap, outcome=snaps.meta["outcome"],
                  horizon_months=horizon, features=ft, random_state=random_state, n_threads=n_threads)
    rows: list[dict[str, Any]] = []
    fair_rows: list[pd.DataFrame] = []
    prev_lists: dict[str, np.ndarray] = {}
    last_masks: tuple[dict[str, np.ndarray], Any] | None = None
    crosstab_frame = None
    n_persons = int(pd.unique(ids).size)
    steps = [f"split {s}" for s in splits["split"]]
    with Steps(steps, progress, label="select") as bar:
        for _, sp in splits.iterrows():
            bar.step(f"split {sp['split']}")
            tr_days = np.array([_time.day(d) for d in sp["train_dates"]], dtype=np.int64)
            te_days = np.array([_time.day(d) for d in sp["test_dates"]], dtype=np.int64)
            tr = np.isin(days, tr_days) & observed
            if max_train_rows is not None and tr.sum() > max_train_rows:
                tr = _bounded(tr, int(max_train_rows), random_state + int(sp["split"]))
            te = np.isin(days, te_days) & observed
            pv_days = np.array([_time.day(prev_of[d]) for d in sp["test_dates"] if d in prev_of], dtype=np.int64)
            pv = np.isin(days, pv_days)
            _check_split(sp, y_all[tr], int(te.sum()), n_persons, max_persons)
            Xtr, ytr, dtr = X.loc[tr], y_all[tr], days[tr]
            Xte, yte, dte = X.loc[te], y_all[te], days[te]
            scores: dict[str, np.ndarray] = {}
            for s in grid:
                if s.kind == "last_list":
                    continue
                cols = model_columns[s.name]
                est, use = _scorer(s, cols, common, bfs_column)
                try:
                    if s.kind == "bfs_rule":
                        est.fit(Xtr[use], ytr)
                    else:
                        est.fit(Xtr[use], ytr, as_of=dtr)
                except ValidationError as exc:
                    raise ValidationError(
                        f"split {int(sp['split'])} (origin {pd.Timestamp(sp['origin']).date()}), spec {s.name!r}: "
                        f"{exc} ({int(ytr.sum())} positive of {len(ytr)} training rows from {n_persons} "
                        "person(s))") from None
                scores[s.name] = est.predict_proba(Xte[use])[:, 1]
                if s is reference and any(g.kind == "last_list" for g in grid):
                    # the reference list of the month end before each evaluation date, kept
                    prev_risk = pd.Series(est.predict_proba(X.loc[pv, use])[:, 1], index=X.index[pv])
                    prev_top = top_k_mask(prev_risk.to_numpy(), days[pv], k=k, random_state=random_state)
                    step = {int(_time.day(prev_of[d])): _time.day(d) for d in sp["test_dates"] if d in prev_of}
                    carried = pd.Series(np.where(prev_top, prev_risk.to_numpy(), 0.0),
                                        index=pd.MultiIndex.from_arrays(
                                            [ids[pv], np.array([step[int(v)] for v in days[pv]])]))
                    key = pd.MultiIndex.from_arrays([ids[te], dte])
                    got = carried.reindex(key).to_numpy(dtype=np.float64)
                    scores["last_list"] = np.nan_to_num(got, nan=0.0)
            scores = {s.name: scores[s.name] for s in grid if s.name in scores}
            table = evaluate(yte, scores, dte, k=k)
            first_day = int(te_days.min())
            masks = {n: top_k_mask(v, dte, k=k, random_state=random_state) for n, v in scores.items()}
            groups = _protected_groups(Xte, ids[te], dte, attributes)
            at_first = dte == first_day
            for n in scores:
                row = {"split": int(sp["split"]), "origin": sp["origin"], "spec": n, **table.loc[n].to_dict()}
                listed = ids[te][at_first & masks[n]]
                row["jaccard_previous"] = jaccard(listed, prev_lists[n]) if n in prev_lists else np.nan
                prev_lists[n] = listed
                row["jaccard_reference"] = (_jaccard_per_date(masks[n], masks[reference.name], dte)
                                            if reference is not None and reference.name in masks else np.nan)
                counts = _group_counts(masks[n], groups)
                row.update(_worst_ratios(counts, fairness_min_group))
                fair_rows.append(counts.assign(split=int(sp["split"]), spec=n))
                rows.append(row)
            last_masks = (masks, dte)
            if reference is not None and reference.name in masks:
                crosstab_frame = crosstab(Xte, masks[reference.name])
            logger.info("select: split %d (origin %s) evaluated on %d snapshots", sp["split"],
                        sp["origin"].date(), int(te.sum()))
    if last_masks is None:  # pragma: no cover - rolling_splits gives at least one split or raises
        raise ValidationError("no split was evaluated")
    masks, dte = last_masks
    names = list(masks)
    jb = pd.DataFrame([[_jaccard_per_date(masks[a], masks[b], dte) for b in names] for a in names],
                      index=pd.Index(names, name="spec"), columns=names)
    metrics = pd.DataFrame(rows)
    info = {"outcome": snaps.meta["outcome"], "horizon_months": horizon, "gap_months": gap, "k": k,
            "capacity": capacity, "random_state": random_state, "every_months": every_months, "years": years,
            "test_months": test_months, "train_months": train_months, "calibration_months": calibration_months,
            "snapshots": str(snaps.path), "data_fingerprint": snaps.meta.get("data_fingerprint"),
            "reference": None if reference is None else reference.name, "fairness_min_group": fairness_min_group,
            "fairness_attributes": sorted({a for f in fair_rows for a in f["attribute"].unique()})}
    if sample is not None:
        info["sample"] = sample
    fairness = (pd.concat(fair_rows, ignore_index=True)[["split", "spec", "attribute", "group", "n", "flagged"]]
                if fair_rows else None)
    return SelectionResult(metrics=metrics, splits=splits, specs=grid, jaccard_between=jb, info=info,
                           crosstab=crosstab_frame, fairness=fairness)
