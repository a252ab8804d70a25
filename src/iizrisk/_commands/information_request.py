"""``iizrisk information-request CONFIG --institution ALV --person PSEUDONYM --out DIR``: a person's right to information."""

from __future__ import annotations

import argparse

from .._texts import LANGUAGES
from ..errors import EXIT_OK
from ._args import iso_date, output_folder, refuse_writing_into_the_deployment

HELP = "answer a person's request for information (nDSG Art. 25): one HTML document of everything held"
DESCRIPTION = (
    "Write, in the person's language, everything iizrisk holds about one person: the registrations with "
    "their source, the recorded interventions, the flags, every score and worklist with its date and "
    "reasons, the reviews and decisions, the model's purpose and logic, retention and whom to contact "
    "([deployment] contact). The office acting for --institution answers: case numbers of other "
    "institutions are shown only when [worklist] disclose_institutions names them. --person is the "
    "pseudonym computed at the office with `iizrisk pseudonymise` (the AHV number never enters iizrisk). "
    "When nothing is held the command stops (exit 1) unless --nothing-held confirms that answer "
    "(a pseudonym computed with another key finds nothing too). See docs/information_request.md."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="deployment configuration (.toml)")
    p.add_argument("--person", required=True, metavar="PSEUDONYM", help="the person's pseudonym")
    p.add_argument("--institution", required=True, metavar="CODE",
                   help="the institution the answering office acts for (e.g. ALV)")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="folder to write information.html into")
    p.add_argument("--language", choices=LANGUAGES, help="the person's language (default: the institution's "
                   "list language)")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", type=iso_date, help="date of the flags (default: the last run)")
    p.add_argument("--nothing-held", action="store_true",
                   help="write the answer that nothing is held when no row matches the pseudonym")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, ValidationError
    from ..information import information_request

    person = args.person.strip().lower()
    if len(person) >= 16 and person in str(args.out).lower():  # the AHV number is refused by plain_path
        raise ConfigError("--out holds the person's pseudonym (withheld here): the folder's name would tie the "
                          "answer to the person in every listing and log; name it otherwise, e.g. by the "
                          "request's date or number")

    from ..config import Settings

    refuse_writing_into_the_deployment(Settings.load(args.config), args.config, folders={"--out": args.out})
    doc = information_request(args.config, person=args.person, institution=args.institution,
                              language=args.language, as_of=args.as_of)
    if doc.nothing_held and not args.nothing_held:
        raise ValidationError("information request: no registration, score, list or review matches this "
                              "pseudonym; check that it was computed from the right AHV number with the "
                              "deployment's key, or pass --nothing-held to answer that nothing is held")
    path = doc.save(args.out)
    print(f"written: {path}")
    return EXIT_OK
