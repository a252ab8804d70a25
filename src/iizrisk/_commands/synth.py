"""``iizrisk synth``: generate a synthetic population (spells, interventions, truth)."""

from __future__ import annotations

import argparse

from .._time import _shown
from ..config import MAX_COUNT
from ..errors import EXIT_OK
from ._args import finite_float, int_at_least, iso_date, output_folder

HELP = "generate a synthetic Swiss population: canonical spells, interventions and the truth"
DESCRIPTION = (
    "Simulate people moving between ALV, IV, SH, BB, BSLB, MIG, UV and KTG (calibrated to the BFS "
    "figures) and write DIR/spells.parquet, DIR/interventions.parquet, DIR/truth.parquet and "
    "DIR/synth.json; with --exports also institution-style raw exports (DIR/exports/) and the "
    "deployment configuration that reads them (DIR/iizrisk.toml). Same seed, same files."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--persons", type=int_at_least(1, MAX_COUNT), required=True, metavar="N",
                   help=f"people with at least one spell in the period (1 to {MAX_COUNT:,})")
    p.add_argument("--start", type=iso_date, required=True, metavar="YYYY-MM-DD", help="first day of the period")
    p.add_argument("--end", type=iso_date, required=True, metavar="YYYY-MM-DD",
                   help="last day of the period (the export date)")
    p.add_argument("--seed", type=int_at_least(0), default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR",
                   help="output folder: new, empty, or an earlier synth output's (its files replaced)")
    p.add_argument("--exports", action="store_true",
                   help="also write institution-style raw exports and iizrisk.toml")
    p.add_argument("--effect", type=_effect, default=0.3, metavar="X",
                   help="true effect of a joint assessment: relative reduction of the hazards of new "
                        "ALV/IV/SH spells for 24 months (hazard ratio 1 - X; default 0.3, 0 = none; from -1 = an "
                        "assessment that doubles them, to 1 = prevents them)")
    p.add_argument("--canton", metavar="XX", help="generate one canton (two-letter code)")
    p.add_argument("--shock", action="append", default=[], metavar="KIND:INST:YYYY-MM-DD[:SIZE]",
                   help="plant a dated change for monitoring drills (repeatable): slow_exits:ALV:2020-07-01:0.3 "
                        "(exits 30 %% slower from that day) or no_exit_reasons:SH:2020-07-01 (no exit reason "
                        "recorded from that day); applied to the simulated spells, see iizrisk.synth.Shock")


def _effect(text: str) -> float:
    """argparse type of --effect: a finite number from :data:`~iizrisk.synth._population.MIN_EFFECT` to 1."""
    # imported here, not at the top: the parser is built for every command
    from ..synth._population import MIN_EFFECT

    value = finite_float(1.0)(text)
    if value < MIN_EFFECT:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is below the minimum {MIN_EFFECT:g} (a hazard ratio of "
                                         f"{1 - MIN_EFFECT:g}: an assessment that doubles the new spells)")
    return value


def _check_out(out: str) -> None:
    """Refuse (exit code 2) an --out that is a file, or a non-empty folder that is no earlier synth output.

    The files are written over those of the same names: pointed at a deployment's folder,
    its iizrisk.toml, exports and spells would be swapped for synthetic ones. An earlier
    output (``synth.json`` in it) is written over, as ``demo`` replaces an earlier demo.
    """
    from pathlib import Path

    from ..errors import ConfigError

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {out}: a file, not a folder; give a new or empty folder for the synthetic data")
    if path.is_dir() and not (path / "synth.json").is_file():
        entries = sorted(p.name for p in path.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise ConfigError(f"--out {out}: the folder is not empty and holds no earlier synthetic data ({shown}; "
                              "no synth.json); its files of the same names would be replaced: give a new or empty "
                              "folder")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..synth import Shock, apply_shocks, generate

    _check_out(args.out)

    # refused before the simulation runs: a shock at no simulated institution or outside the period changes nothing
    shocks = [Shock.parse(s).check_period(args.start, args.end) for s in args.shock]
    pop = generate(args.persons, args.start, args.end, seed=args.seed, effect=args.effect,
                   canton=args.canton.upper() if args.canton else None)
    if shocks:
        pop = dataclasses.replace(pop, spells=apply_shocks(pop.spells, shocks, observed_until=args.end),
                                  meta={**pop.meta, "shocks": [s.to_text() for s in shocks]})
    out = pop.to_dir(args.out, exports=args.exports)
    print(out)
    return EXIT_OK
