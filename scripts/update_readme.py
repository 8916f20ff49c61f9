"""Copy the results table of reports/summary.md into README.md.

The plot stage writes the table between ``<!-- table:start -->`` and
``<!-- table:end -->`` in reports/summary.md; this script puts that block,
unchanged, between ``<!-- results:start -->`` and ``<!-- results:end -->`` in
README.md, so the README never shows numbers the pipeline did not produce.

    python scripts/update_readme.py            # rewrite README.md
    python scripts/update_readme.py --check    # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from lrsched.core.io import atomic_path

TABLE = ("<!-- table:start -->", "<!-- table:end -->")
RESULTS = ("<!-- results:start -->", "<!-- results:end -->")


class MarkerError(Exception):
    """A marker is missing, repeated or out of order; the message names the fix."""


def _span(lines: list[str], markers: tuple[str, str], path: Path, fix: str) -> tuple[int, int]:
    """Indices of the start and end marker lines (each must appear once, start first)."""
    found = []
    for marker in markers:
        at = [i for i, line in enumerate(lines) if line.strip() == marker]
        if len(at) != 1:
            raise MarkerError(f"{path}: {'no' if not at else 'more than one'} line {marker!r}; {fix}")
        found.append(at[0])
    if found[0] > found[1]:
        raise MarkerError(f"{path}: {markers[1]!r} comes before {markers[0]!r}; {fix}")
    return found[0], found[1]


def updated_readme(readme: str, summary: str, readme_path: Path, summary_path: Path) -> str:
    """README text with the results block replaced by the summary's table block."""
    s_lines = summary.splitlines(keepends=True)
    a, b = _span(s_lines, TABLE, summary_path, "regenerate it with `dvc repro plot`")
    r_lines = readme.splitlines(keepends=True)
    c, d = _span(r_lines, RESULTS, readme_path,
                 f"put the lines {RESULTS[0]!r} and {RESULTS[1]!r} where the results table belongs")
    block = s_lines[a + 1:b]
    if block and not block[-1].endswith("\n"):
        block[-1] += "\n"
    return "".join(r_lines[:c + 1] + block + r_lines[d:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--summary", type=Path, default=Path("reports/summary.md"))
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date; write nothing")
    args = parser.parse_args(argv)
    try:
        summary = args.summary.read_text()
    except FileNotFoundError:
        print(f"error: {args.summary}: missing; run `dvc repro plot` first", file=sys.stderr)
        return 2
    try:
        readme = args.readme.read_text()
    except FileNotFoundError:
        print(f"error: {args.readme}: missing; pass --readme PATH", file=sys.stderr)
        return 2
    try:
        new = updated_readme(readme, summary, args.readme, args.summary)
    except MarkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if new == readme:
        print(f"{args.readme}: up to date")
        return 0
    if args.check:
        print(f"{args.readme}: results table out of date; run python scripts/update_readme.py", file=sys.stderr)
        return 1
    mode = args.readme.stat().st_mode & 0o777
    with atomic_path(args.readme) as tmp:  # atomic, like every output; keep README's permissions
        tmp.write_text(new)
        tmp.chmod(mode)
    print(f"{args.readme}: results table updated from {args.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
