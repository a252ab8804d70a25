"""``iizrisk train``: fit a risk model on monthly snapshots and write a model directory."""

from __future__ import annotations

import argparse
import sys

from ._args import MAX_MONTHS, int_at_least, int_between, plain_path
from .features import add_key_argument, read_inputs

#: ``--max-persons`` by default: about 5 GiB of features; benchmarks/train_scale.py shows the held-out AUC
#: flat from about 25,000 persons (0.894 at 25k, 0.897 at 50k, 0.893 with all 100k persons of a canton)
DEFAULT_MAX_PERSONS = 200_000

HELP = "train a risk model (temporal split, calibration) and write a model directory"
#: run as the console script, glibc keeps freed memory for the next arrays (:mod:`iizrisk._memory`): at 92,000
#: persons, 31 s instead of 32 s, system 3.7-4.5 s instead of 4.7-5.9 s, peak 2.2 GB instead of 2.3 GB
KEEPS_FREED_MEMORY = True
DESCRIPTION = (
    "Build monthly snapshots of everyone with an open spell, label them with the outcome over the "
    "horizon (full data), train on earlier as-of dates, calibrate on a later slice and report on a "
    "held-out later period against logistic regression and the BFS revolving-door rule. Writes "
    "MODEL_DIR/model.skops (no pickle) and MODEL_DIR/manifest.json atomically, signed with the key of "
    "--key-file or IIZRISK_MODEL_KEY (unsigned models are refused by `score` and `run` unless allowed). "
    "Shows a progress bar on stderr when it is a terminal."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..outcomes import outcome_names

    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spells", metavar="PATH", help="canonical spells: a Parquet file or folder")
    src.add_argument("--snapshots", metavar="DIR", type=plain_path,
                     help="a snapshot dataset written by `iizrisk snapshots` (features are not built again)")
    p.add_argument("--interventions", metavar="PATH", help="interventions (CSV or Parquet)")
    p.add_argument("--outcome", required=True, choices=outcome_names(), help="what the model predicts")
    p.add_argument("--horizon-months", type=int_between(1, MAX_MONTHS), default=12, metavar="N", help="horizon in months (12)")
    p.add_argument("--model", choices=["boosting", "logistic"], default="boosting",
                   help="gradient boosting (default) or the transparent logistic regression")
    p.add_argument("--out", required=True, type=plain_path, metavar="MODEL_DIR", help="model directory to write: new, empty, or an earlier model's (replaced)")
    p.add_argument("--validation-months", type=int_between(1, MAX_MONTHS), default=6, metavar="N", help="held-out months (6)")
    p.add_argument("--calibration-months", type=int_between(1, MAX_MONTHS), default=6, metavar="N", help="calibration months (6)")
    p.add_argument("--capacity", type=int_at_least(1), default=50, metavar="K",
                   help="people reviewed per as-of date, for precision/recall at k (50)")
    p.add_argument("--max-train-rows", type=int_at_least(1), metavar="N", help="subsample the training snapshots")
    p.add_argument("--max-persons", type=int_at_least(0), metavar="N", default=DEFAULT_MAX_PERSONS,
                   help="train on a fixed random sample of about N persons with all their snapshots, chosen "
                   "before any feature is built: memory and time depend on N, not on the population "
                   f"(recorded in the manifest). Default {DEFAULT_MAX_PERSONS:,}: held-out AUC stops improving "
                   "from about 25,000 persons (benchmarks/train_scale.py); 0 means every person")
    p.add_argument("--no-compare", dest="compare", action="store_false",
                   help="skip the comparison on the held-out months with the other model kind and the BFS rule "
                   "(the comparison model learns from at most 300,000 training rows, "
                   "iizrisk.model._training.COMPARE_MAX_ROWS)")
    p.add_argument("--spec", metavar="SELECTED_JSON", type=plain_path,
                   help="train the specification chosen by `iizrisk select` (its selected.json): its model "
                   "kind, parameters and left-out feature groups replace --model")
    add_key_argument(p)


def run(args: argparse.Namespace) -> int:
    from ..errors import IizriskError, ValidationError
    from ..model import check_model_folder, save_model, signing_key, train
    from ..modelcard import write_model_card

    key = signing_key(file=args.key_file)  # fail on a bad key before the long training
    check_model_folder(args.out, "--out")  # a file or another folder would be replaced by the model
    params: dict = {}
    if args.spec:  # before the spells are read: a wrong file is found at once
        from ..selection import load_spec

        spec = load_spec(args.spec, outcome=args.outcome, horizon_months=args.horizon_months)
        args.model, params = spec.kind, dict(spec.params)
        if spec.drop_groups:
            params["drop_groups"] = tuple(spec.drop_groups)
    if args.spells:
        spells, interventions = read_inputs(args.spells, args.interventions)
    elif args.interventions:
        from ..errors import ConfigError

        raise ConfigError("--interventions with --snapshots: the snapshot dataset was built with its "
                          "interventions already; give them to `iizrisk snapshots` instead")
    else:
        spells, interventions = None, None
    try:
        model, report = train(spells, interventions=interventions, outcome=args.outcome,
                              horizon_months=args.horizon_months, model=args.model,
                              validation_months=args.validation_months,
                              calibration_months=args.calibration_months, capacity=args.capacity,
                              max_train_rows=args.max_train_rows, max_persons=args.max_persons or None,
                              snapshots=args.snapshots, compare=args.compare, **params)
    except IizriskError:  # user errors (also ValueErrors) keep their own message and exit code
        raise
    except ValueError as exc:
        from sklearn.utils._param_validation import InvalidParameterError

        if args.spec and isinstance(exc, InvalidParameterError):  # the parameters came from the file
            from ..errors import ConfigError

            raise ConfigError(f"{args.spec}: the chosen parameters cannot be trained ({exc}); write the file "
                              "anew with `iizrisk select`") from exc
        raise ValidationError(f"{args.spells or args.snapshots}: cannot train: {exc}") from exc
    model_dir = save_model(model, args.out, key=key)
    write_model_card(model_dir, model_dir)  # model_card.md/.html/.json, from the manifest alone
    print(f"model written to {args.out} ({args.model}, outcome {args.outcome}, "
          f"horizon {args.horizon_months} months)", file=sys.stdout)
    per = "; ".join(f"{k} {v[0]} to {v[1]}" for k, v in report.periods.items())
    print(f"as-of dates: {per}", file=sys.stdout)
    print(report.metrics.round(4).to_string(), file=sys.stdout)
    return 0
