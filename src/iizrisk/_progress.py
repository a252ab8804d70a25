"""Progress bars for long work: on a terminal only, on stderr, never torn by log lines.

One class serves training and the nightly run. On a terminal it shows a tqdm
bar on stderr and routes the ``iizrisk`` logger's lines above the bar (tqdm's
``logging_redirect_tqdm``); in cron, in notebooks' captured output and in
tests (no terminal) it does nothing at all.
"""

from __future__ import annotations

import logging
import sys
from contextlib import AbstractContextManager
from typing import Any

logger = logging.getLogger("iizrisk")


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (False for closed or odd streams)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False


class Steps:
    """A bar over named steps: ``with Steps(names, label="train") as bar: bar.step("fit")``."""

    def __init__(self, names: list[str] | tuple[str, ...], enabled: bool | None = None, *, label: str = ""):
        self.names = list(names)
        self.label = label
        self.enabled = is_terminal(sys.stderr) if enabled is None else bool(enabled)
        self._bar: Any = None  # the tqdm bar while shown
        self._redirect: AbstractContextManager[None] | None = None
        self._done = 0

    def __enter__(self) -> Steps:
        if self.enabled:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            redirect = logging_redirect_tqdm(loggers=[logger])
            redirect.__enter__()
            self._redirect = redirect
            self._bar = tqdm(total=len(self.names), desc=self.label, unit="step", file=sys.stderr, leave=False,
                             bar_format="{desc:<22} {bar} {n_fmt}/{total_fmt} steps, {elapsed}")
        return self

    def step(self, name: str) -> None:
        """Mark the previous step done and show ``name`` as the current one."""
        if self._bar is not None:
            if self._done:
                self._bar.update(1)
            self._done += 1
            self._bar.set_description_str(f"{self.label}: {name}" if self.label else name)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._redirect is not None:
            self._redirect.__exit__(*exc)
            self._redirect = None
