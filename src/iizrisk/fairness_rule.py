"""The fairness rule: when a disparity between groups exceeds what a deployment accepts.

:class:`FairnessRule` judges each disparity of a :class:`~iizrisk.fairness.FairnessAudit`
on its bootstrap confidence interval: a ratio bound (by default the four-fifths
rule on flag rates) and difference bounds (by default the calibration gap).
Kept apart from the audit so that the settings (``[privacy]``) can check their
values with the rule itself without importing the audit and the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._texts import load_locale, text
from .errors import ConfigError

__all__ = ["FairnessRule", "GAP_METRICS", "METRICS", "VERDICTS"]

#: Verdicts of the rule on one disparity (column ``verdict`` of :attr:`FairnessAudit.gaps`).
VERDICTS: tuple[str, ...] = ("exceeds", "cannot_tell", "within", "not_judged")
#: Per-group metrics, in table order.
METRICS: tuple[str, ...] = ("flag_rate", "precision", "recall", "fpr", "mean_predicted",
                            "observed_rate", "calibration_gap", "roc_auc")
#: Metrics compared with the reference group.
GAP_METRICS: tuple[str, ...] = ("flag_rate", "precision", "recall", "fpr", "calibration_gap", "roc_auc")
_NO_RATIO = frozenset({"calibration_gap", "mean_predicted"})  # differences only



@dataclass(frozen=True)
class FairnessRule:
    """When a disparity between a group and its reference group exceeds what the deployment accepts.

    Two kinds of bound, each judged on the bootstrap confidence interval:

    * a **ratio** bound for the metrics in ``ratio_metrics``: the group's value
      divided by the reference's must lie in ``[min_ratio, 1 / min_ratio]``
      (the four-fifths rule with ``min_ratio=0.8``: 0.8 to 1.25);
    * a **difference** bound per metric in ``max_difference``: the absolute
      difference from the reference must be at most the bound (by default
      the calibration gap, 0.05: the model over- or under-predicts a group
      by at most five percentage points more than the reference).

    A disparity *exceeds* when its whole interval lies beyond a bound,
    is *within* when its whole interval lies inside every bound, and
    otherwise the rule *cannot tell at this sample size*.

    Parameters
    ----------
    min_ratio : float, default 0.8
        Lower ratio bound (between 0 and 1); the upper bound is its inverse.
    ratio_metrics : tuple of str, default ("flag_rate",)
    max_difference : mapping of str to float, default {"calibration_gap": 0.05}

    Examples
    --------
    >>> rule = FairnessRule()
    >>> rule.bounds("flag_rate"), rule.bounds("calibration_gap")
    ([('ratio', 0.8, 1.25)], [('difference', -0.05, 0.05)])
    >>> rule.judge("ratio", 0.8, 1.25, estimate=3.2, lo=1.6, hi=5.6, n=400)[0]
    'exceeds'
    >>> rule.judge("ratio", 0.8, 1.25, estimate=1.1, lo=0.7, hi=1.6, n=400)[0]
    'cannot_tell'
    """

    min_ratio: float = 0.8
    ratio_metrics: tuple[str, ...] = ("flag_rate",)
    max_difference: Mapping[str, float] = field(default_factory=lambda: {"calibration_gap": 0.05})

    def __post_init__(self) -> None:
        if not 0 < float(self.min_ratio) <= 1:
            raise ConfigError(f"min_ratio={self.min_ratio}: a ratio bound between 0 (exclusive) and 1")
        object.__setattr__(self, "ratio_metrics", tuple(self.ratio_metrics))
        object.__setattr__(self, "max_difference", dict(self.max_difference))
        unknown = sorted((set(self.ratio_metrics) | set(self.max_difference)) - set(METRICS))
        if unknown:
            raise ConfigError(f"fairness rule: metric(s) {unknown} unknown; choose from {', '.join(METRICS)}")
        no_ratio = sorted(set(self.ratio_metrics) & _NO_RATIO)
        if no_ratio:
            raise ConfigError(f"fairness rule: {no_ratio} have no ratio (a signed gap); bound their difference")
        bad = {k: v for k, v in self.max_difference.items() if not 0 <= float(v) <= 1}
        if bad:
            raise ConfigError(f"fairness rule: difference bounds {bad} must be between 0 and 1")

    @classmethod
    def from_settings(cls, settings) -> FairnessRule:
        """The rule of ``[privacy] fairness_min_ratio``, ``fairness_ratio_metrics`` and
        ``fairness_max_differences``."""
        p = settings.privacy
        return cls(min_ratio=float(p.fairness_min_ratio), ratio_metrics=tuple(p.fairness_ratio_metrics),
                   max_difference={k: float(v) for k, v in p.fairness_max_differences.items()})

    @classmethod
    def differences_only(cls, max_gap: float, metrics: Sequence[str] = GAP_METRICS) -> FairnessRule:
        """The former rule: an absolute difference bound on every compared metric."""
        return cls(ratio_metrics=(), max_difference={m: float(max_gap) for m in metrics})

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics the rule judges, in table order."""
        return tuple(m for m in METRICS if m in self.ratio_metrics or m in self.max_difference)

    def bounds(self, metric: str) -> list[tuple[str, float, float]]:
        """(kind, lower, upper) bounds of ``metric``: ``ratio`` and/or ``difference``."""
        out = []
        if metric in self.ratio_metrics:
            out.append(("ratio", float(self.min_ratio), 1.0 / float(self.min_ratio)))
        if metric in self.max_difference:
            b = float(self.max_difference[metric])
            out.append(("difference", -b, b))
        return out

    def judge(self, kind: str, lower: float, upper: float, *, estimate: float, lo: float, hi: float,
              n: float) -> tuple[str, float]:
        """Verdict on one disparity and the group size that would decide it (NaN when decided).

        The interval's half-width shrinks about as ``1 / sqrt(n)`` (ratios on the
        log scale): the size needed is ``n`` times the squared ratio of today's
        half-width to the distance between the estimate and the bound it must
        clear -- an approximation that assumes the reference grows alike.
        """
        v = _judge(kind, lower, upper, np.array([estimate], dtype=np.float64), np.array([lo], dtype=np.float64),
                   np.array([hi], dtype=np.float64), np.array([n], dtype=np.float64))
        return str(v[0][0]), float(v[1][0])

    def describe(self, language: str = "en") -> str:
        """The rule in plain words of ``language`` (audit texts, model cards, log messages in English).

        Examples
        --------
        >>> FairnessRule().describe("de")
        'Markierungsrate: Verhältnis zwischen 0.8 und 1.25; Kalibrierungsabstand: Differenz innerhalb ±0.05'
        """
        words = load_locale(language)["card"]["columns"]
        parts = []
        if self.ratio_metrics:
            parts.append(text("audit.rule_ratio", language, metrics=", ".join(words.get(m, m) for m in self.ratio_metrics),
                              lo=f"{float(self.min_ratio):g}", hi=f"{1 / float(self.min_ratio):.3g}"))
        parts += [text("audit.rule_difference", language, metric=words.get(m, m), bound=f"{float(b):g}")
                  for m, b in self.max_difference.items()]
        return "; ".join(parts) or text("audit.rule_none", language)

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready data (model cards, DPIA)."""
        return {"min_ratio": float(self.min_ratio), "max_ratio": 1.0 / float(self.min_ratio),
                "ratio_metrics": list(self.ratio_metrics),
                "max_difference": {k: float(v) for k, v in self.max_difference.items()}}


def _judge(kind: str, lower: float, upper: float, est: np.ndarray, lo: np.ndarray, hi: np.ndarray,
           n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised verdicts (object array) and sizes needed (float, NaN when decided or unknown)."""
    with np.errstate(all="ignore"):  # log(0) and infinite interval ends (a reference of 0) are expected
        if kind == "ratio":
            # one logarithm for the bounds and the estimates: math.log and numpy's may differ in the last
            # bit, and an estimate on a bound then needed 10^32 people instead of "never decided"
            e, a, b = np.log(est), np.log(lo), np.log(hi)
            lb, ub = (float(x) for x in np.log(np.array([lower, upper], dtype=np.float64)))
        else:
            e, a, b, lb, ub = est, lo, hi, lower, upper
        ok = ~np.isnan(a) & ~np.isnan(b) & np.isfinite(e)  # an interval may end at infinity
        exceeds = ok & ((b < lb) | (a > ub))
        within = ok & (a >= lb) & (b <= ub)
        verdict = np.where(exceeds, "exceeds", np.where(within, "within", "cannot_tell")).astype(object)
        verdict[~ok] = "not_judged"
        half = (b - a) / 2
        # the bound the estimate must clear: the nearer one from inside, the crossed one from outside
        dist = np.where(e < lb, lb - e, np.where(e > ub, e - ub, np.minimum(e - lb, ub - e)))
        need = np.ceil(n * (half / dist) ** 2)
    need = np.where((verdict == "cannot_tell") & (dist > 0) & np.isfinite(need), need, np.nan)
    return verdict, need


# --------------------------------------------------------------------------- inputs
