"""``iizrisk score``: score everyone with a spell open on the as-of date, with reason codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._time import _shown
from ._args import int_at_least, iso_date, output_folder, refuse_overwriting_inputs
from .features import add_key_argument, read_inputs

HELP = "score everyone with a spell open on the as-of date; write DIR/scores.parquet"
DESCRIPTION = (
    "Load a model directory (signature and hash checked on the bytes that are then loaded; an unsigned "
    "model only with --allow-unsigned-model), build the point-in-time "
    "features at the as-of date, write DIR/scores.parquet: person_id, as_of, outcome, risk "
    "(calibrated), risk_band, rank and, for the top --explain-top rows, reason_1..3 with their texts. "
    "Scores are hints for a human review, never decisions."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="model directory (iizrisk train)")
    p.add_argument("--spells", required=True, metavar="PATH", help="canonical spells: a Parquet file or folder")
    p.add_argument("--interventions", metavar="PATH", help="interventions (CSV or Parquet)")
    p.add_argument("--as-of", required=True, type=iso_date, metavar="YYYY-MM-DD", help="as-of date")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
    p.add_argument("--language", choices=["de", "fr", "it", "en"], default="de", help="reason texts (de)")
    p.add_argument("--explain-top", type=int_at_least(0), default=500, metavar="N",
                   help="explain the N highest risks (500); 0: no reasons")
    p.add_argument("--bands", type=band_thresholds, default="0.10,0.25", metavar="LOW,HIGH",
                   help="risk thresholds of the bands medium and high, 0 < LOW < HIGH < 1 (0.10,0.25)")
    add_key_argument(p)
    add_unsigned_argument(p)


def band_thresholds(text: str) -> tuple[float, float]:
    """argparse type: ``LOW,HIGH``, the thresholds of the bands medium and high (0 < LOW < HIGH < 1).

    The rule of ``[worklist] risk_bands`` (:func:`iizrisk.model._scoring.check_bands`); anything
    else is a usage error (exit code 2), never a ValueError in scoring or a silently wrong band.
    """
    from ..model._scoring import BANDS_RULE, check_bands

    try:
        return check_bands([float(x) for x in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)}: give low,high, {BANDS_RULE}, e.g. 0.10,0.25") from None


def add_unsigned_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-unsigned-model", action="store_true",
                   help="load a model that is not signed when no signing key is configured (its hash alone "
                        "proves nothing; default: refused, exit 3)")


def run(args: argparse.Namespace) -> int:
    from ..explain import score_with_reasons
    from ..model import load_model, signing_key

    refuse_overwriting_inputs({"--model": args.model, "--spells": args.spells, "--interventions": args.interventions,
                               "--key-file": args.key_file}, folders={"--out": args.out})
    model = load_model(args.model, key=signing_key(file=args.key_file),
                       allow_unsigned=args.allow_unsigned_model)
    spells, interventions = read_inputs(args.spells, args.interventions)
    out = score_with_reasons(model, spells, as_of=args.as_of, interventions=interventions,
                             language=args.language, explain_top=args.explain_top, bands=args.bands)
    if not len(out):  # never an empty result with exit 0
        from ..errors import ValidationError

        first, last = spells["start_date"].min(), spells["start_date"].max()
        raise ValidationError(f"{args.spells}: nobody to score at {args.as_of}: no one had an open case the model "
                              f"scores then (the spells start from {first:%Y-%m-%d} to {last:%Y-%m-%d}); give an "
                              "--as-of date within the data")
    from ..store import write_parquet_atomic

    path = write_parquet_atomic(out, Path(args.out) / "scores.parquet")
    print(f"{len(out):,} persons scored at {args.as_of}; {path}", file=sys.stdout)
    return 0
