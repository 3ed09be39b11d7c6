"""One file of evaluation summaries per results directory, so that git holds one file where an evaluation writes a
directory (run files, timing log, plot and ``summary.json``) each time.

``bench/results/DIR/evaluations.json`` maps ``NAME/summary.json`` (or ``NAME/depth.json``, a depth curve) to that
file's content. The card scripts read an evaluation through :func:`load`: the fresh ``DIR/NAME/FILE`` when it is
there, the gathered copy otherwise (a fresh clone). The bench scripts call :func:`gather` after evaluating:

    python bench/gathered.py bench/results/depth            # gather what DIR/*/ holds (kept entries stay)
    python bench/gathered.py --has bench/results/depth NAME  # exit 0 if NAME's summary is there, gathered or not
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from blockrank.files import write_text_atomic

FILE = "evaluations.json"
GATHERED = ("summary.json", "depth.json")


def _gathered(directory: Path) -> dict[str, dict]:
    path = directory / FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def load(directory: Path, name: str, file: str = "summary.json") -> dict | None:
    """``directory/name/file``, fresh or gathered; None if neither exists."""
    fresh = directory / name / file
    if fresh.is_file():
        return json.loads(fresh.read_text())
    return _gathered(directory).get(f"{name}/{file}")


def has(directory: Path, name: str) -> bool:
    """Whether the evaluation ``name`` has finished (a summary or a depth curve), fresh or gathered."""
    return any(load(directory, name, file) is not None for file in GATHERED)


def gather(directory: Path) -> Path:
    """Merge every ``directory/*/{summary,depth}.json`` into ``directory/evaluations.json``, keeping the entries
    whose directories are absent (a fresh clone regenerates only what it reruns)."""
    entries = _gathered(directory)
    found = {f"{p.parent.name}/{p.name}": json.loads(p.read_text()) for file in GATHERED for p in directory.glob(f"*/{file}")}
    if not entries and not found:
        sys.exit(f"nothing to gather under {directory}: no */summary.json or */depth.json")
    entries.update(found)
    target = directory / FILE
    write_text_atomic(target, json.dumps(dict(sorted(entries.items())), indent=1) + "\n")
    return target


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("directory", type=Path)
    p.add_argument("name", nargs="?", help="with --has: the evaluation to look for")
    p.add_argument("--has", action="store_true", help="exit 0 if the evaluation NAME has finished, 1 if not")
    args = p.parse_args()
    if args.has:
        if not args.name:
            p.error("--has needs NAME")
        sys.exit(0 if has(args.directory, args.name) else 1)
    print(f"wrote {gather(args.directory)}", file=sys.stderr)


if __name__ == "__main__":
    main()
