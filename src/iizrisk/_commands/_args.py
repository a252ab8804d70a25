"""argparse types shared by the sub-commands (a module starting with ``_`` is not a command)."""

from __future__ import annotations

import argparse
import datetime as dt


def iso_date(value: str) -> str:
    """argparse type: a YYYY-MM-DD date, returned as that text."""
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in the form YYYY-MM-DD") from None


def int_at_least(minimum: int):
    """argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {minimum}")
        return value

    return parse
