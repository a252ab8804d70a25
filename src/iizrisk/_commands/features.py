"""``iizrisk features``: the point-in-time features of everyone with a spell open on the as-of date."""

from __future__ import annotations

import argparse
import logging
import sys

import pandas as pd

from ..errors import ValidationError
from ._args import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    check_input,
    iso_date,
    output_file,
    plain_path,
    read_spells_input,
    refuse_empty_result,
    refuse_overwriting_inputs,
)

logger = logging.getLogger("iizrisk")

HELP = "write the point-in-time features at an as-of date (one row per person with an open spell)"
DESCRIPTION = (
    "Build the point-in-time view of the spells at the as-of date and write one row per person with "
    "a spell open on that day, one column per feature (see the feature catalogue). Rows after the "
    "as-of date are ignored. The ending of --out chooses the format: .parquet or .csv (';', UTF-8 with "
    "BOM, for spreadsheets)."
)


def read_inputs(spells_path: str, interventions_path: str | None, *, extra_institutions: list[str] | None = None,
                warn_empty: bool = True) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Canonical spells (a Parquet file or folder) and optional interventions.

    ``extra_institutions``: the deployment's own institution codes (from a command's ``--config``).
    ``warn_empty``: log that a header-only interventions file makes every intervention feature 0; a command
    that refuses such a file itself (a study needs assessments) passes False, so no warning precedes its error.
    """
    from ..io import read_interventions

    spells = read_spells_input(spells_path, extra_institutions=extra_institutions)
    interventions = read_interventions(check_input(interventions_path, "interventions")) \
        if interventions_path else None
    if warn_empty and interventions is not None and not len(interventions):  # a new deployment, or an early export
        logger.warning("%s holds no interventions (its columns, no rows): every person's intervention features "
                       "are 0; check the export if joint assessments were held", interventions_path)
    if interventions is not None:
        _refuse_strangers(spells, interventions, interventions_path)
    return spells, interventions


def _refuse_strangers(spells: pd.DataFrame, interventions: pd.DataFrame, path) -> None:
    """Interventions none of whose pseudonyms is among the spells' people: every intervention feature would be
    0 without a word (pseudonyms made with another key, or changed by a spreadsheet, e.g. upper-cased)."""
    if not len(interventions) or not len(spells):
        return
    people = spells["person_id"]
    known = people.cat.categories if isinstance(people.dtype, pd.CategoricalDtype) else pd.Index(people.unique())
    theirs = pd.Index(pd.unique(interventions["person_id"].astype(str).to_numpy()))
    if not (known.get_indexer(theirs) >= 0).any():
        raise ValidationError(
            f"{path}: none of the {len(theirs):,} people in the interventions is among the spells' people: "
            "their pseudonyms must be made with the same key and written unchanged (a spreadsheet may have "
            "changed their case); check the export, or leave --interventions out")


def add_key_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key-file", metavar="FILE", type=plain_path,
                   help="file holding the model signing key (HMAC); default: the environment variable "
                   "IIZRISK_MODEL_KEY when set. The key itself is never a command-line argument.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spells", required=True, metavar="PATH", help="canonical spells: a Parquet file or folder")
    p.add_argument("--interventions", metavar="PATH", help="interventions (CSV or Parquet)")
    p.add_argument("--as-of", required=True, type=iso_date, metavar="YYYY-MM-DD", help="as-of date")
    p.add_argument("--out", required=True, type=output_file(*PARQUET_SUFFIXES, *CSV_SUFFIXES),
                   metavar="FILE.parquet|FILE.csv",
                   help="output file, written atomically: Parquet for .parquet, CSV (';', UTF-8 with BOM) for .csv")


def run(args: argparse.Namespace) -> int:
    from ..features import PointInTimeFeatures
    from ..spells import as_of_day, refuse_as_of_after_data
    from ..store import write_parquet_atomic
    from ..worklist import write_worklist_csv

    refuse_overwriting_inputs({"--spells": args.spells, "--interventions": args.interventions},
                              files={"--out": args.out})
    spells, interventions = read_inputs(args.spells, args.interventions)
    # as score() and compute_flags(): open registrations would be stretched to a day nothing is known of
    refuse_as_of_after_data(spells, as_of_day(args.as_of), what="--as-of")
    X = PointInTimeFeatures().fit_transform(spells, as_of=args.as_of, interventions=interventions)
    if not len(X):  # an as-of date before the data: an empty table is no result
        refuse_empty_result(spells, args.spells, args.as_of, "describe")
    out = X.reset_index()
    out["person_id"] = out["person_id"].astype("str")
    out["as_of"] = out["as_of"].astype("datetime64[s]")
    if args.out.suffix.lower() in CSV_SUFFIXES:
        write_worklist_csv(out, args.out)
    else:
        write_parquet_atomic(out, args.out)
    print(f"{len(out):,} persons, {X.shape[1]} features at {args.as_of}; {args.out}", file=sys.stdout)
    return 0
