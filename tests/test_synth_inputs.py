"""``iizrisk synth`` and ``generate`` refuse options that would do nothing, run for ages or overflow.

Each refusal is a usage error (exit code 2, the option and the fix named) before anything is
simulated or written: no output folder appears.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from iizrisk.cli import main
from iizrisk.config import MAX_COUNT
from iizrisk.errors import ConfigError
from iizrisk.synth import Shock, generate
from iizrisk.synth import _population as synth_population
from iizrisk.synth._engine import INSTITUTIONS
from iizrisk.synth._population import MIN_EFFECT

START, END = "2020-01-01", "2022-12-31"


def _never(*args, **kwargs):
    raise AssertionError("the simulation ran: the option should have been refused before")


def _main(argv: list[str]) -> int:
    """The exit code, also of a usage error argparse refuses."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _synth(tmp_path, *extra: str) -> int:
    return _main(["synth", "--start", START, "--end", END, "--persons", "10", "--out", str(tmp_path / "out"),
                  *extra])


# ---------------------------------------------------------------------------- --shock
@pytest.mark.parametrize(("shock", "match"), [
    ("slow_exits:XYZ:2021-01-01:0.3", "not a simulated institution; choose one of ALV, IV, SH"),
    ("no_exit_reasons:RAV:2021-01-01", "not a simulated institution"),
    ("slow_exits:ALV:2030-01-01:0.3", "outside the period 2020-01-01 to 2022-12-31"),
    ("no_exit_reasons:SH:2019-12-31", "outside the period 2020-01-01 to 2022-12-31"),
    ("no_exit_reasons:SH:2021-01-01:0.5", "no_exit_reasons takes no size.*write no_exit_reasons:SH:2021-01-01"),
])
def test_a_shock_that_would_change_nothing_is_refused(tmp_path, capsys, shock, match):
    assert _synth(tmp_path, "--shock", shock) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_shocks_at_every_simulated_institution_on_the_period_bounds_are_planted(tmp_path):
    shocks = [f"no_exit_reasons:{inst.lower()}:{day}" for inst, day in zip(INSTITUTIONS, [START, END] * 4,
                                                                            strict=True)]
    assert _synth(tmp_path, *[a for s in shocks for a in ("--shock", s)]) == 0
    recorded = json.loads((tmp_path / "out" / "synth.json").read_text(encoding="utf-8"))["shocks"]
    assert recorded == [s.replace(s.split(":")[1], s.split(":")[1].upper()) for s in shocks]


def test_shock_checks_hold_for_python_callers():
    with pytest.raises(ConfigError, match="not a simulated institution"):
        Shock("slow_exits", "2021-01-01", institution="XYZ")
    with pytest.raises(ConfigError, match="takes no size"):
        Shock("no_exit_reasons", "2021-01-01", institution="SH", size=0.3)
    assert Shock("no_exit_reasons", "2021-01-01", institution="SH").size is None
    assert Shock("slow_exits", "2021-01-01").size == 0.3
    with pytest.raises(ConfigError, match="outside the period"):
        Shock.parse("slow_exits:ALV:2023-01-01").check_period(START, END)
    assert Shock.parse(f"slow_exits:ALV:{END}").check_period(START, END).date.year == 2022


# --------------------------------------------------------------------------- --persons
@pytest.mark.parametrize(("persons", "match"), [("0", "below the minimum 1"), ("-3", "below the minimum 1"),
                                                ("10000001", "above the maximum 10000000"),
                                                ("99999999999", "above the maximum")])
def test_persons_outside_one_to_ten_million_are_refused(tmp_path, capsys, monkeypatch, persons, match):
    monkeypatch.setattr(synth_population, "_simulate_chunk", _never)  # refused before, not after ages
    assert _main(["synth", "--start", START, "--end", END, "--persons", persons, "--out", str(tmp_path / "out")]) == 2
    assert "--persons" in (err := capsys.readouterr().err) and match in err
    assert not (tmp_path / "out").exists()


def test_generate_refuses_more_than_ten_million_persons_at_once(monkeypatch):
    monkeypatch.setattr(synth_population, "_simulate_chunk", _never)
    with pytest.raises(ConfigError, match="n_persons must be a whole number from 0 to 10,000,000"):
        generate(MAX_COUNT + 1, START, END)


# ---------------------------------------------------------------------------- --effect
@pytest.mark.parametrize("effect", ["-1e300", "-1.0001", "-5"])
def test_effect_below_minus_one_is_refused(tmp_path, capsys, effect):
    assert _synth(tmp_path, f"--effect={effect}") == 2
    assert "--effect" in (err := capsys.readouterr().err) and "below the minimum -1" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("effect", [-1e300, -1.5, math.nan, -math.inf, 1.5, "0.3"])
def test_generate_refuses_an_effect_outside_minus_one_to_one(effect):
    with pytest.raises(ConfigError, match="effect must be a number from -1"):
        generate(10, START, END, effect=effect)


def test_the_most_harmful_effect_is_simulated(tmp_path):
    assert MIN_EFFECT == -1
    assert _synth(tmp_path, f"--effect={MIN_EFFECT}") == 0
    pop = generate(600, START, END, seed=1, effect=MIN_EFFECT, heterogeneous=True, effect_sample=0.2)
    assert (pop.truth["hazard_ratio"] == 2).all() and pop.truth["assessed"].any()
