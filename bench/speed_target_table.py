"""Issue #22's speed targets for one machine, read from the JSON files bench/speed_targets.sh writes.

    python bench/speed_target_table.py SUFFIX     # e.g. xeon, epyc: speed-*-SUFFIX[-before|-compiled].json

Prints a markdown table: one column per variant found (before, eager, compiled), one row per target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return {x["n_docs"]: x for x in json.loads(path.read_text())["summary"]} if path.is_file() else None


def main(suffix: str) -> None:
    variants = [
        (label, tail)
        for label, tail in [("before", "-before"), ("after", ""), ("compiled", "-compiled")]
        if load(f"speed-vs-prefill-{suffix}{tail}")
    ]
    eager_text, eager_fixed = load(f"speed-same-text-dl19-{suffix}"), load(f"speed-vs-prefill-{suffix}")
    rows: dict[str, list[str]] = {
        k: []
        for k in [
            "same text, 100 whole DL19 passages: full prefill / BlockRank (must >= 4.7)",
            "100 passages of 64 tokens: full prefill / BlockRank",
            "BlockRank GFLOP/s vs the prefill's (must >=): whole passages",
            "the same, 64-token passages, N = 100",
            "ms per document at N = 20 / N = 500 (must <= 1.3x)",
            "default reranker, 100 passages x 64 tokens, median (must < 1.0 s)",
            "the same read at l* = 8 (`adapters/smollm2-l8`, not shippable)",
        ]
    }
    for label, tail in variants:
        text, fixed = load(f"speed-same-text-dl19-{suffix}{tail}"), load(f"speed-vs-prefill-{suffix}{tail}")
        # a run that timed BlockRank only (older compiled runs) is compared with the eager run's prefill
        text_full = (text if text and text[100].get("full_s") else eager_text) or {}
        fixed_full = fixed if fixed[100].get("full_s") else eager_fixed
        l8 = load(f"speed-vs-prefill-{suffix}-l8{tail}")
        cells = iter(rows.values())
        for a, b in [(text_full, text), (fixed_full, fixed)]:
            cell = next(cells)
            if a and b and a[100].get("full_s") and b[100].get("sparse_s"):
                cell.append(f"{a[100]['full_s']:.2f} / {b[100]['sparse_s']:.2f} s = {a[100]['full_s'] / b[100]['sparse_s']:.2f}")
            else:
                cell.append("-")
        for a, b in [(text_full, text), (fixed_full, fixed)]:
            cell = next(cells)
            ok = a and b and a[100].get("full_gflops") and b[100].get("sparse_gflops")
            cell.append(f"{b[100]['sparse_gflops']:.0f} vs {a[100]['full_gflops']:.0f}" if ok else "-")
        small, large = fixed[20]["ms_per_doc"], fixed[500]["ms_per_doc"]
        next(cells).append(f"{small:.1f} / {large:.1f} ({small / large:.2f}x)")
        next(cells).append(f"{fixed[100]['sparse_s']:.2f} s")
        next(cells).append(f"{l8[100]['sparse_s']:.2f} s" if l8 else "-")
    print("| target (issue #22) | " + " | ".join(label for label, _ in variants) + " |")
    print("|---" * (1 + len(variants)) + "|")
    for name, values in rows.items():
        print(f"| {name} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
