"""The split-vs-first-block table from bench/split_results.sh's evaluations: prints it and writes split.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from blockrank.eval import CONDENSED

MEASURES = {"nDCG@10": "nDCG@10", CONDENSED: "condensed", "Judged@10": "Judged@10"}


def main(root: str) -> None:
    rows = []
    for summary in sorted(Path(root).glob("*/summary.json")):
        report = json.loads(summary.read_text())
        name = summary.parent.name
        mode = "split" if "-split-" in name else "first block"
        blockrank = report["rerankers"]["blockrank"]
        rows.append(
            {
                "set": report["dataset"],
                "mode": mode,
                "dtype": report["config"]["dtype"],
                "queries": report["queries"],
                "machine": report["machine"],
                **{label: blockrank["metrics"].get(m) for m, label in MEASURES.items()},
                "latency_s_mean": blockrank["latency_s"]["mean"],
                "latency_s_p50": blockrank["latency_s"]["p50"],
                "tokens_per_query": blockrank["tokens_per_query"],
            }
        )
    if not rows:  # a fresh clone holds split.json only: keep it
        sys.exit(f"no evaluations under {root}: run bash bench/split_results.sh first")
    (Path(root) / "split.json").write_text(json.dumps(rows, indent=1))
    print("| set | documents read | nDCG@10 | condensed | Judged@10 | s/query (mean) | tokens/query |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["set"], r["mode"])):
        cells = [f"{r[m]:.3f}" if r[m] is not None else "n/a" for m in MEASURES.values()]
        print(f"| {r['set']} | {r['mode']} | {' | '.join(cells)} | {r['latency_s_mean']:.1f} | {r['tokens_per_query']:.0f} |")
    for where in sorted({(r["set"], r["machine"].get("cpu"), r["machine"].get("threads"), r["dtype"]) for r in rows}):
        print(f"{where[0]}: {where[1]}, {where[2]} thread(s) per evaluation, {where[3]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/split")
