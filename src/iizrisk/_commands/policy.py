"""``iizrisk policy``: would ranking by benefit prevent more? Offline evaluation of targeting policies.

Writes into ``--out DIR`` (each file atomically, cells of fewer than
``--min-cell-size`` people hidden):

``benefit_calibration.csv/.parquet/.png``
    estimated against predicted benefit by quantile group of predicted benefit;
``benefit_blp.csv/.parquet``
    the best linear predictor test of the estimated effects;
``policy_values.csv/.parquet/.png``
    outcomes prevented per 100 assessments for each targeting policy (top k by
    risk, by benefit, by risk x benefit, at random in the high band, at
    random), doubly robust (self-normalised: each inverse-propensity term divided
    by its weight total among the selected; ``--plain-values``: the plain mean
    of the doubly robust scores), with bootstrap intervals and the difference
    to top-by-risk.

``--config CONFIG`` reads the deployment's own data instead of ``--spells`` and
``--interventions``: its sources' spells (with the same checks as the nightly
run), its interventions file plus the joint assessments its coordinators'
reviews recorded, and its ``[model]`` outcome and horizon, so that the
benefit model it saves fits the deployment's ``[worklist] rank_by``.

``--save-model FILE`` also writes the benefit model (``.skops``, no pseudonym,
no rows) with this offline evaluation in it: the file a deployment names in
``[worklist] benefit_model`` to order its worklists by benefit
(``rank_by``), which the nightly run allows only where this evaluation
shows the ordering preventing more than ordering by risk.

Refuses (exit code 1, nothing written) when the data cannot support a
benefit model, e.g. when assessments went only to the highest-risk people.

``--episode-days LO HI`` builds the risk sets of people LO..HI days into an
ALV, IV or SH episode (:func:`iizrisk.evaluation.risk_set_table`): where a
canton holds its assessments only early in an episode, the other people at
risk have nobody comparable who was assessed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from ..errors import EXIT_OK, IizriskError, ValidationError
from ._args import (
    MAX_MONTHS,
    float_at_least,
    int_at_least,
    output_file,
    output_folder,
    refuse_overwriting_inputs,
    refuse_unwritable_output,
    refuse_writing_into_the_deployment,
    require_interventions_of_type,
)

HELP = "offline evaluation of targeting by benefit against targeting by risk; write DIR"
DESCRIPTION = (
    "Build the risk-set table of past joint assessments, estimate the effect of an assessment as a "
    "function of the point-in-time features (DR-learner or T-learner), check its calibration, and "
    "compare targeting policies within capacity (top k by risk, by benefit, by risk x benefit, at random "
    "in the high risk band) by their doubly robust value: outcomes prevented per 100 assessments, with "
    "bootstrap intervals. Causal only if the features capture why people were assessed."
)

logger = logging.getLogger("iizrisk")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="CONFIG",
                   help="the deployment's TOML: its sources' spells, its interventions file and the joint "
                        "assessments its coordinators' reviews recorded, its [model] outcome and horizon "
                        "(instead of --spells and --interventions)")
    p.add_argument("--spells", metavar="PATH", help="canonical spells: a Parquet file or folder")
    p.add_argument("--interventions", metavar="PATH", help="interventions (CSV or Parquet)")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
    p.add_argument("--outcome", default=None, choices=["revolving_door", "disintegration"],
                   help="outcome to prevent (revolving_door; with --config its [model] outcome)")
    p.add_argument("--horizon-months", type=int_at_least(1, MAX_MONTHS), default=None, metavar="N",
                   help="horizon of the outcome (12; with --config its [model] horizon_months)")
    p.add_argument("--learner", choices=["dr", "t", "s"], default="t",
                   help="T-learner (default: over 20 synthetic cantons its benefit ranking prevented 0.86 times "
                        "as much as ranking by risk, the S-learner's 0.70 and the DR-learner's 0.43), DR-learner, "
                        "or S-learner with assessment interactions")
    p.add_argument("--capacity", type=float_at_least(0.001), default=0.05, metavar="SHARE",
                   help="share of the people at risk per month who can be assessed (0.05)")
    p.add_argument("--episode-days", type=int_at_least(0, 100_000), nargs=2, default=None, metavar=("LO", "HI"),
                   help="risk sets of people LO..HI days into an ALV, IV or SH episode, where assessments are "
                        "held (e.g. 14 90); the model and its policy values then concern that point of an "
                        "episode only (default: everyone registered)")
    p.add_argument("--controls-per-treated", type=int_at_least(1, 1_000_000), default=10, metavar="K",
                   help="controls sampled per assessed person from each day's risk set (10)")
    p.add_argument("--bootstrap", type=int_at_least(0, 1_000_000), default=200, metavar="B",
                   help="bootstrap replicates (200)")
    p.add_argument("--plain-values", action="store_true",
                   help="policy values as the plain mean of the doubly robust scores instead of the "
                        "self-normalised (Hajek) form, the default")
    p.add_argument("--save-model", metavar="FILE", default=None, type=output_file(".skops"),
                   help="also write the benefit model with this evaluation (.skops, not an input file): the file "
                        "of [worklist] benefit_model")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed (0)")
    p.add_argument("--min-cell-size", type=int_at_least(1), default=5, metavar="K",
                   help="suppress groups and policies resting on 1..K-1 people (5)")
    p.add_argument("--language", choices=["de", "fr", "it", "en"], default=None,
                   help="headers and policy names of the CSV tables in this language, values rounded "
                        "(default: the column codes and the values as they are)")


def _inputs(args: argparse.Namespace, read_inputs):
    """Spells, interventions, outcome and horizon: from the deployment (--config) or from the files."""
    from ..errors import ConfigError

    if args.config:
        if args.spells or args.interventions:
            raise ConfigError("give either --config (the deployment's data) or --spells and --interventions, "
                              "not both")
        from ..config import Settings
        from ..io import ingest
        from ..reviews import all_interventions

        settings = Settings.load(args.config)
        # the model folder is replaced whole by `train` (a file of its own there is refused), the runs and
        # history folders are what the nightly runs publish and keep
        refuse_writing_into_the_deployment(settings, args.config, files={"--save-model": args.save_model},
                                           folders={"--out": args.out})
        _refuse_overwriting(args, {**{f"[sources] {s.name}": settings.resolve(s.path) for s in settings.sources},
                                   "[deployment] interventions": (settings.resolve(settings.deployment.interventions)
                                                                  if settings.deployment.interventions else None)})
        ing = ingest(settings)
        interventions = all_interventions(settings, ing.interventions)
        if interventions is None or not len(interventions):
            raise ValidationError(f"{args.config}: no past assessments to learn from: [deployment] interventions "
                                  "names no file and the reviews recorded none (decisions mapped by [reviews] "
                                  "interventions)")
        return (ing.spells, interventions, args.outcome or settings.model.outcome,
                args.horizon_months or int(settings.model.horizon_months))
    if not (args.spells and args.interventions):
        raise ConfigError("give --spells and --interventions (files), or --config (the deployment's data)")
    spells, interventions = read_inputs(args.spells, args.interventions, warn_empty=False)
    require_interventions_of_type(interventions, args.interventions, "joint_assessment", option=None)
    return spells, interventions, args.outcome or "revolving_door", args.horizon_months or 12


def _refuse_overwriting(args: argparse.Namespace, inputs: dict[str, object] | None = None) -> None:
    """Refuse (exit code 2) --out or --save-model naming an input, and a --save-model that cannot be a file."""
    refuse_overwriting_inputs({"--config": args.config, "--spells": args.spells,
                               "--interventions": args.interventions, **(inputs or {})},
                              files={"--save-model": args.save_model}, folders={"--out": args.out})
    if args.save_model is not None:
        # a folder was found only after the whole computation and --out written; a FIFO was replaced, exit 0
        refuse_unwritable_output(args.save_model, "--save-model", fix="give a file name ending in .skops")


def run(args: argparse.Namespace) -> int:
    from ..benefit import BenefitModel, NoOverlapError, evaluate_policies
    from ..errors import ConfigError
    from ..evaluation import risk_set_table
    from .evaluate import _safe_reason
    from .features import read_inputs

    if args.capacity > 1:
        raise ConfigError(f"--capacity is a share of the people at risk (0.05 = 5 %), got {args.capacity:g}")
    episode_days = None if args.episode_days is None else tuple(args.episode_days)
    if episode_days is not None and episode_days[0] > episode_days[1]:
        raise ConfigError(f"--episode-days LO HI needs LO <= HI, got {episode_days[0]} {episode_days[1]}")
    _refuse_overwriting(args)  # before any work: a wrong --save-model found at the end left --out written
    spells, interventions, outcome_name, horizon = _inputs(args, read_inputs)
    where = args.config or f"{args.spells}, {args.interventions}"
    outcome = f"{outcome_name}_next_{horizon}m"
    try:
        table = risk_set_table(spells, interventions, controls_per_treated=args.controls_per_treated,
                               outcomes=[outcome_name], horizon_months=horizon,
                               episode_days=episode_days, random_state=args.seed)
        model = BenefitModel(learner=args.learner, outcome=outcome, random_state=args.seed).fit(table)
        policies = evaluate_policies(model, capacity=args.capacity, n_bootstrap=args.bootstrap,
                                     normalised=not getattr(args, "plain_values", False), random_state=args.seed)
    except NoOverlapError as exc:
        if episode_days is None:  # the usual reason on real and synthetic data alike: compare like with like
            raise NoOverlapError(
                f"{exc} If the assessments were held at one point of an episode (as in the synthetic and demo "
                "data: 14 to 90 days after an ALV, IV or SH episode starts), compare only people at that point: "
                "--episode-days 14 90.") from exc
        raise
    except IizriskError:  # the other checks: their own message and exit code
        raise
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{where}: cannot evaluate the policies: {_safe_reason(exc)}") from exc
    from ..store import make_dirs, write_files_together

    staged: list[Path] = []  # --save-model written beside its place, moved there once --out is written

    def write(tmp: Path) -> list[Path]:
        files = model.to_dir(tmp, min_cell_size=args.min_cell_size, language=args.language)
        files += policies.to_dir(tmp, min_cell_size=args.min_cell_size, language=args.language)
        if args.save_model:
            make_dirs(args.save_model.parent)
            fd, name = tempfile.mkstemp(dir=args.save_model.parent, prefix=f".{args.save_model.name}.",
                                        suffix=".tmp")
            os.close(fd)
            staged.append(Path(name))
            model.attach_evidence(policies).save(staged[0])
        return files

    try:
        paths = write_files_together(args.out, write, label="policy")  # all or none
        if staged:
            os.replace(staged.pop(), args.save_model)
            for rank_by in ("benefit", "risk_x_benefit"):
                ev = model.evidence(rank_by)
                logger.info("policy: rank_by = %r %s: %s", rank_by, "supported" if ev.supported else "not supported",
                            ev.reason)
            paths.append(args.save_model)
    finally:
        for f in staged:
            f.unlink(missing_ok=True)
    print(policies.summary_text(), file=sys.stderr)
    logger.info("policy: %d files written to %s", len(paths), args.out)
    for path in paths:
        print(path, file=sys.stdout)
    return EXIT_OK
