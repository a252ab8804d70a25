"""Cost of the nightly run's fairness stage (iizrisk.list_fairness) at up to national scale.

Random canonical spells (``bench_flags.make_spells``, 5 spells per person) with a
birth year and a sex per person; the people with a spell open at T are scored,
0.5 % of them are on a list. Prints wall and CPU seconds and the peak resident
memory of the stage (the view is built before it, as in the nightly run).

    python benchmarks/bench_list_fairness.py --spells 1000000 10000000
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from _common import print_table, stage
from bench_flags import AS_OF, make_spells


def run(n_spells: int) -> list[dict]:
    from iizrisk.fairness_rule import FairnessRule
    from iizrisk.list_fairness import list_fairness
    from iizrisk.view import View

    rows: list[dict] = []
    spells = make_spells(n_spells, n_spells // 5)
    code, uniques = pd.factorize(spells["person_id"])
    rng = np.random.default_rng(1)
    spells["birth_year"] = rng.integers(1950, 2008, len(uniques))[code]
    spells["sex"] = np.array(["F", "M"], dtype=object)[rng.integers(0, 2, len(uniques))][code]
    view = View.at(spells, AS_OF)
    tl = view.timeline
    open_at_t = np.bincount(tl.person[tl.end.astype(np.int64) >= tl.as_of], minlength=tl.n_persons) > 0
    scores = pd.DataFrame({"person_id": tl.person_ids[open_at_t].astype(str)})
    listed = scores["person_id"].to_numpy()[rng.random(len(scores)) < 0.005]
    with stage(rows, "list_fairness", cpu=True, spells=n_spells, persons_scored=len(scores), listed=len(listed)):
        list_fairness(view, scores, listed, attributes=("sex", "age_band", "disability", "nationality_group"),
                      rule=FairnessRule())
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spells", type=int, nargs="+", default=[1_000_000])
    args = ap.parse_args(argv)
    rows = [r for n in args.spells for r in run(n)]
    print_table(rows, "The nightly fairness stage (flag-rate ratios per protected group)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
