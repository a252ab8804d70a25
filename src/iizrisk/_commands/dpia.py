"""``iizrisk dpia CONFIG --out DIR``: a data-protection impact assessment draft (nDSG Art. 22)."""

from __future__ import annotations

import argparse

from .._texts import LANGUAGES
from ..errors import EXIT_OK
from ._args import output_folder, refuse_writing_into_the_deployment

HELP = "write a data-protection impact assessment draft (nDSG Art. 22) of the deployment"
DESCRIPTION = (
    "Write dpia.md, dpia.html and dpia.json: a DPIA draft in the FDPIC's structure for Art. 22 (description, "
    "data categories and sources, purpose, recipients per institution with the disclosure policy, retention, "
    "profiling logic, necessity and proportionality, risks to persons, the measures the software takes each "
    "with the test that proves it, open points), filled in from the configuration, the data contract, the "
    "model card and the fairness rule. Fields the office must fill in are marked [OPEN] and listed in the "
    "last section; the command prints how many remain."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="deployment configuration (.toml)")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="folder to write the draft into")
    p.add_argument("--language", choices=LANGUAGES, help="default: [worklist] language")


def run(args: argparse.Namespace) -> int:
    from ..config import Settings
    from ..dpia import dpia_draft

    refuse_writing_into_the_deployment(Settings.load(args.config), args.config, folders={"--out": args.out})
    draft = dpia_draft(args.config, language=args.language)
    paths = draft.save(args.out)
    print(f"written: {', '.join(str(p) for p in paths.values())}; {len(draft.open_fields())} field(s) for the "
          "office to fill in ([OPEN])")
    return EXIT_OK
