"""The l* sweep's table from bench/lstar_sweep.sh's evaluations: prints it and writes lstar.json."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from blockrank.eval import CONDENSED


def main(root: str) -> None:
    rows: dict[int, dict] = {}
    machine = None
    for summary in Path(root).glob("*/summary.json"):
        found = re.fullmatch(r"dl21-(bm25|splade)-l(\d+)", summary.parent.name)
        if not found:
            continue
        report = json.loads(summary.read_text())
        machine = report["machine"]
        metrics = report["rerankers"]["blockrank"]["metrics"]
        row = rows.setdefault(int(found[2]), {"layer": int(found[2])})
        row[f"{found[1]}_ndcg"], row[f"{found[1]}_condensed"] = metrics["nDCG@10"], metrics.get(CONDENSED)
        row["queries"] = report["queries"]
    if not rows:  # a fresh clone holds lstar.json only: keep it
        sys.exit(f"no evaluations under {root}: run bash bench/lstar_sweep.sh first")
    table = [rows[k] for k in sorted(rows)]
    (Path(root) / "lstar.json").write_text(json.dumps({"machine": machine, "rows": table}, indent=1))
    print("| l* | DL21 dev BM25 nDCG@10 | condensed | DL21 dev SPLADE++ nDCG@10 | condensed |")
    print("|---|---|---|---|---|")
    for r in table:
        cells = [r.get(k) for k in ("bm25_ndcg", "bm25_condensed", "splade_ndcg", "splade_condensed")]
        print(f"| {r['layer']} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/lstar")
