"""Render a nightly run's HTML summary with headless Chromium and write docs/summary.png.

    python scripts/screenshot.py [--run RUN_FOLDER] [--out docs/summary.png]

``make screenshot`` calls it with the demo's latest run
(``demo-output/runs/latest``). When that folder holds no ``summary.html`` a
small demo canton is built in a temporary folder first (``iizrisk.demo``,
``--persons`` people). The page is opened as a local file with every
network feature of the browser switched off, so the picture also proves that
the summary is self-contained (styles inline, the plot embedded).

Besides the screenshot (1280 x 900, one laptop screen) the page is rendered
once more in a very tall window to measure how high its content is; the
script says whether everything fits on one screen.

Needs Chromium (Debian: ``apt-get install chromium``); exits 2 when it is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["BROWSERS", "build_demo_run", "content_height", "find_chromium", "render"]

#: Executable names tried, in order.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


def find_chromium() -> str | None:
    """Path of a Chromium-like browser on PATH (or ``$CHROMIUM``), or None."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def render(html: str | Path, png: str | Path, *, width: int = 1280, height: int = 900,
           browser: str | None = None, timeout: float = 120) -> Path:
    """Screenshot of a local HTML file in a headless browser window of ``width`` x ``height``."""
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found: install it (apt-get install chromium) or set $CHROMIUM")
    html, png = Path(html).resolve(), Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="iizrisk-chromium-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
               f"--window-size={width},{height}", html.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "HOME": profile})
    if proc.returncode != 0 or not png.exists():
        raise RuntimeError(f"{browser} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return png


def content_height(html: str | Path, *, width: int = 1280, tall: int = 3000, browser: str | None = None,
                   timeout: float = 120) -> int:
    """Height in pixels of the rendered page content (last row that is not background)."""
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="iizrisk-tall-") as tmp:
        png = render(html, Path(tmp) / "tall.png", width=width, height=tall, browser=browser, timeout=timeout)
        img = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    background = img[-1, -1]
    rows = np.flatnonzero((np.abs(img - background).sum(axis=2) > 24).any(axis=1))
    return int(rows[-1]) + 1 if len(rows) else 0


def build_demo_run(out: str | Path, *, persons: int = 5000, years: int = 8) -> Path:
    """A small demo canton (``iizrisk.demo.run_demo``); returns its run folder."""
    from iizrisk.demo import run_demo

    return Path(run_demo(out, persons=persons, years=years, progress=False).run_folder)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, help="run folder holding summary.html (default: build a small demo)")
    ap.add_argument("--out", type=Path, default=Path("docs/summary.png"))
    ap.add_argument("--persons", type=int, default=5000, help="people in the demo canton built when needed")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    args = ap.parse_args(argv)
    browser = find_chromium()
    if browser is None:
        print("screenshot: no Chromium found; install it (Debian: apt-get install chromium) "
              "or point $CHROMIUM to it", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="iizrisk-demo-") as tmp:
        folder = args.run
        if folder is None or not (folder / "summary.html").exists():
            if folder is not None:
                print(f"screenshot: {folder}/summary.html not found; building a small demo run", file=sys.stderr)
            folder = build_demo_run(Path(tmp) / "demo", persons=args.persons)
        html = folder / "summary.html"
        png = render(html, args.out, width=args.width, height=args.height, browser=browser)
        height = content_height(html, width=args.width, browser=browser)
    fits = "fits on one screen" if height <= args.height else f"does NOT fit: {height} px high"
    print(f"{png}: {args.width}x{args.height} screenshot of {html}; the page {fits}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
