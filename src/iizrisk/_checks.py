"""Checks of the numbers a user passes: whole numbers and finite reals, one rule for every option.

A bool is not a number here (``True`` would count as 1 people or months), a
fraction is not a whole number (2.5 months must not be cut to 2), and ``nan``
or ``inf`` is neither (every comparison with ``nan`` is false, so a range check
alone lets it through). Every option that takes a count, a number of months or
days, a share or a level is checked by :func:`is_whole`, :func:`whole_number`
or :func:`is_real`, so that the rule is the same everywhere.
"""

from __future__ import annotations

from typing import TypeGuard

import numpy as np

from ._time import _shown
from .errors import ConfigError

__all__ = ["check_seed", "is_real", "is_whole", "whole_number"]


def is_whole(value) -> TypeGuard[int | np.integer]:
    """Whether ``value`` is a whole number: a Python or numpy integer, not a bool.

    Examples
    --------
    >>> is_whole(3), is_whole(np.int64(3)), is_whole(3.0), is_whole(True), is_whole("3")
    (True, True, False, False, False)
    """
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def is_real(value) -> TypeGuard[int | float | np.integer | np.floating]:
    """Whether ``value`` is a finite real number: an integer or a float, not a bool, nan or inf.

    Examples
    --------
    >>> is_real(0.5), is_real(2), is_real(float("nan")), is_real(float("inf")), is_real(False), is_real("0.5")
    (True, True, False, False, False, False)
    """
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_) \
        and bool(np.isfinite(value))


def _count(number: int) -> str:
    """A bound as written in a message: thousands grouped from five digits on (1200, 10,000)."""
    return f"{number:,}" if abs(number) >= 10_000 else str(number)


def whole_number(value, name: str, low: int, high: int | None = None, *, unit: str = "", example: str = "",
                 none: bool = False) -> int | None:
    """``value`` as an ``int`` when it is a whole number from ``low`` (to ``high``); else a ConfigError.

    Parameters
    ----------
    value
        What the user passed.
    name : str
        The option's name, as the user wrote it (``"n_bootstrap"``, ``"--persons"``).
    low, high : int
        The smallest and (unless None) the largest value allowed.
    unit : str
        What is counted, for the message (``"months"``, ``"days"``, ``"rows"``).
    example : str
        A good value, for the message (``"500 (0: no intervals)"``).
    none : bool
        Whether ``None`` is allowed (then returned as ``None``).

    Raises
    ------
    ConfigError
        Naming the option, the rule and the value given (withheld when it holds a long number).

    Examples
    --------
    >>> whole_number(12, "horizon_months", 1, 1200, unit="months")
    12
    >>> whole_number(2.5, "horizon_months", 1, 1200, unit="months")
    Traceback (most recent call last):
    ...
    iizrisk.errors.ConfigError: horizon_months must be a whole number of months from 1 to 1200; got '2.5'
    """
    if value is None and none:
        return None
    if not is_whole(value) or value < low or (high is not None and value > high):
        span = f"from {_count(low)}" + (f" to {_count(high)}" if high is not None else "") \
            + (" or None" if none else "")
        of = f" of {unit}" if unit else ""
        eg = f", e.g. {example}" if example else ""
        raise ConfigError(f"{name} must be a whole number{of} {span}{eg}; got {_shown(repr(value))}")
    return int(value)


def check_seed(random_state) -> None:
    """A ``random_state``: None, a whole number (a seed) or a numpy generator, seed sequence or bit generator;
    anything else (a bool, a fraction, text) is a ConfigError naming it."""
    if random_state is not None and (isinstance(random_state, bool | np.bool_) or not isinstance(
            random_state, int | np.integer | np.random.Generator | np.random.SeedSequence | np.random.BitGenerator)):
        raise ConfigError(f"random_state must be a whole number (a seed) or None, got {_shown(repr(random_state))}")
