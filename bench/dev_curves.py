"""Dev curves of training runs side by side, from their log.jsonl files (the rows with a dev_score).

    python bench/dev_curves.py NAME=LOG [NAME=LOG ...]

Prints a markdown table: one row per run and evaluated step, plain and condensed nDCG@10 per dev list and
dev_score (their mean), the ship criterion of issue #19.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def dev_rows(path: Path) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if "dev_score" in r]


def main(runs: list[str]) -> None:
    if not runs or any("=" not in run for run in runs):
        sys.exit("usage: python bench/dev_curves.py NAME=LOG [NAME=LOG ...] (LOG: a run's log.jsonl)")
    pairs = [(name, dev_rows(Path(log))) for name, log in (run.split("=", 1) for run in runs)]
    if not all(rows for _, rows in pairs):
        sys.exit("no dev evaluation in " + ", ".join(name for name, rows in pairs if not rows))
    columns = [k for k in pairs[0][1][0] if k.startswith("dev_") and k != "dev_score"]
    print("| run | step | " + " | ".join(c.removeprefix("dev_").replace("-top100", "") for c in columns) + " | dev_score |")
    print("|---" * (3 + len(columns)) + "|")
    for name, rows in pairs:
        for r in rows:
            print(f"| {name} | {r['step']} | " + " | ".join(f"{r[c]:.3f}" for c in columns) + f" | {r['dev_score']:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
