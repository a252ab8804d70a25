"""``iizrisk synth``: generate a synthetic population (spells, interventions, truth)."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK
from ._args import finite_float, int_at_least, iso_date, plain_path

HELP = "generate a synthetic Swiss population: canonical spells, interventions and the truth"
DESCRIPTION = (
    "Simulate people moving between ALV, IV, SH, BB, BSLB, MIG, UV and KTG (calibrated to the BFS "
    "figures) and write DIR/spells.parquet, DIR/interventions.parquet, DIR/truth.parquet and "
    "DIR/synth.json; with --exports also institution-style raw exports (DIR/exports/) and the "
    "deployment configuration that reads them (DIR/iizrisk.toml). Same seed, same files."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--persons", type=int_at_least(0), required=True, metavar="N",
                   help="people with at least one spell in the period")
    p.add_argument("--start", type=iso_date, required=True, metavar="YYYY-MM-DD", help="first day of the period")
    p.add_argument("--end", type=iso_date, required=True, metavar="YYYY-MM-DD",
                   help="last day of the period (the export date)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--out", required=True, type=plain_path, metavar="DIR", help="output folder")
    p.add_argument("--exports", action="store_true",
                   help="also write institution-style raw exports and iizrisk.toml")
    p.add_argument("--effect", type=finite_float(1.0), default=0.3, metavar="X",
                   help="true effect of a joint assessment: relative reduction of the hazards of new "
                        "ALV/IV/SH spells for 24 months (hazard ratio 1 - X; default 0.3, 0 = none)")
    p.add_argument("--canton", metavar="XX", help="generate one canton (two-letter code)")
    p.add_argument("--shock", action="append", default=[], metavar="KIND:INST:YYYY-MM-DD[:SIZE]",
                   help="plant a dated change for monitoring drills (repeatable): slow_exits:ALV:2020-07-01:0.3 "
                        "(exits 30 %% slower from that day) or no_exit_reasons:SH:2020-07-01 (no exit reason "
                        "recorded from that day); applied to the simulated spells, see iizrisk.synth.Shock")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..synth import Shock, apply_shocks, generate

    shocks = [Shock.parse(s) for s in args.shock]  # refused before the simulation runs
    pop = generate(args.persons, args.start, args.end, seed=args.seed, effect=args.effect,
                   canton=args.canton.upper() if args.canton else None)
    if shocks:
        pop = dataclasses.replace(pop, spells=apply_shocks(pop.spells, shocks, observed_until=args.end),
                                  meta={**pop.meta, "shocks": [s.to_text() for s in shocks]})
    out = pop.to_dir(args.out, exports=args.exports)
    print(out)
    return EXIT_OK
