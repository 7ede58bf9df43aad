#!/usr/bin/env python3
"""Render a report.html to a PNG with headless Chromium, to look at how the report reads.

    python3 scripts/screenshot_report.py reports/2026-W47/report.html [out.png] [--height 2400]
    python3 scripts/screenshot_report.py --sample [out.png]     # a hand-made report (tests/analysis_factory.py)

Chromium runs with networking side-channels off and a throwaway profile; the report is
self-contained, so nothing is fetched. Prints the PNG path and its size.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def chromium_command(profile: str, width: int, height: int, *extra: str) -> list[str]:
    """Headless Chromium with networking side-channels off and a throwaway profile."""
    browser = shutil.which("chromium") or CHROMIUM
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={profile}", f"--window-size={width},{height}", *extra]


def screenshot(html_file: Path, png: Path, width: int = 1400, height: int = 2400) -> Path:
    with tempfile.TemporaryDirectory(prefix="rightsize-chromium-") as profile:
        cmd = chromium_command(profile, width, height, f"--screenshot={png}", html_file.resolve().as_uri())
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not png.exists():
        sys.exit(f"chromium failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return png


def dump_dom(html_file: Path, width: int = 1400, height: int = 2400, *extra: str) -> str:
    """The page's DOM after its scripts ran (``--dump-dom``), at the given window size."""
    with tempfile.TemporaryDirectory(prefix="rightsize-chromium-") as profile:
        cmd = chromium_command(profile, width, height, *extra, "--dump-dom", html_file.resolve().as_uri())
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


def sample_report(folder: Path) -> Path:
    """Write a report of the hand-made test analysis (two weeks, so week-over-week shows)."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import datetime as dt

    from analysis_factory import make_analysis, make_snapshot
    from rightsize.config import Config
    from rightsize.emit.report import write_report

    config = Config()
    previous = make_analysis(week=0)
    write_report(make_snapshot(previous), previous, config, folder / "2026-W46")
    current = make_analysis(week=1)
    result = write_report(make_snapshot(current), current, config, folder / "2026-W47",
                          now=dt.datetime(2026, 11, 18, tzinfo=dt.timezone.utc))
    return result.paths["report.html"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html", nargs="?", help="report.html to render")
    ap.add_argument("png", nargs="?", help="output PNG (default: beside the HTML)")
    ap.add_argument("--sample", action="store_true", help="render a hand-made sample report first")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=2400)
    args = ap.parse_args()
    if args.sample:
        out_png = Path(args.html) if args.html else Path(tempfile.gettempdir()) / "rightsize-sample.png"
        html_file = sample_report(Path(tempfile.mkdtemp(prefix="rightsize-sample-")))
    elif args.html:
        html_file = Path(args.html)
        out_png = Path(args.png) if args.png else html_file.with_suffix(".png")
    else:
        ap.error("give a report.html or --sample")
    if not html_file.exists():
        sys.exit(f"{html_file}: no such file")
    png = screenshot(html_file, out_png.resolve(), args.width, args.height)
    print(f"{png} ({png.stat().st_size / 1024:.0f} KiB) from {html_file}")


if __name__ == "__main__":
    main()
