"""Render docs/results.toml into docs/results.md and the README's results table.

    python bench/render_results.py          # rewrite both
    python bench/render_results.py --check  # exit 1 if either is stale (tests run this)

Every number comes from the result file a row names; the row's command rewrites that file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA, PAGE, README = ROOT / "docs/results.toml", ROOT / "docs/results.md", ROOT / "README.md"
BEGIN, END = "<!-- results:begin (bench/render_results.py) -->", "<!-- results:end -->"
COLUMNS = {"given": "first stage's order", "minilm": "all-MiniLM-L6-v2", "blockrank-model": "the model alone"}
CONDENSED = "nDCG(judged_only=True)@10"


def cell(scores: dict | None, metric: str | None = None) -> str:
    if scores is None:
        return "-"
    if metric:
        return f"{scores[metric]:.3f}"
    return f"{scores['nDCG@10']:.3f} / {scores[CONDENSED]:.3f}"


def quality_table(rows: list[dict]) -> list[str]:
    head = ["candidates (100 per query)", *COLUMNS.values(), "**the default call**", "default call, list shuffled first"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        result = json.loads((ROOT / row["result"]).read_text())
        scores = result[row["key"]] if "key" in row else result["rerankers"]
        metric = row.get("metric")
        cells = [cell(scores.get(name), metric) for name in (*COLUMNS, "blockrank", "blockrank-shuffled")]
        cells[-2] = f"**{cells[-2]}**"
        lines.append(f"| {row['set']} | " + " | ".join(cells) + " |")
    return lines


def speed_table(rows: list[dict]) -> list[str]:
    lines = ["| machine | documents | prompt tokens | BlockRank s | full attention s | speed-up |", "|---|---|---|---|---|---|"]
    for row in rows:
        for r in json.loads((ROOT / row["result"]).read_text())["summary"]:
            full = "-" if r.get("full_s") is None else f"{r['full_s']:.2f}"
            ratio = "-" if r.get("full_over_sparse") is None else f"{r['full_over_sparse']:.1f}x"
            lines.append(f"| {row['machine']} | {r['n_docs']} | {r['tokens']:,} | {r['sparse_s']:.2f} | {full} | {ratio} |")
    return lines


def commands(rows: list[dict]) -> list[str]:
    seen = dict.fromkeys(f"- `{r['command']}` writes `{r['result']}` ({r['machine']})" for r in rows)
    return list(seen)


def render() -> tuple[str, str]:
    data = tomllib.loads(DATA.read_text())
    quality, speed = quality_table(data["quality"]), speed_table(data["speed"])
    readme_block = "\n".join(
        [BEGIN, "", *quality, "", *speed, "", "Reproduce and read more: [docs/results.md](docs/results.md).", END]
    )
    page = "\n".join(
        [
            "# Results",
            "",
            "Rendered from `docs/results.toml` by `python bench/render_results.py`; do not edit by hand. The experiment",
            "log that led here is [lab-notes.md](lab-notes.md).",
            "",
            "## Quality at 100 candidates",
            "",
            "nDCG@10 / condensed nDCG@10 (judged documents only); SciFact rows give nDCG@10. The default call is",
            "`Reranker.from_pretrained().rerank(query, docs)`: whole documents, the input order weighed as evidence.",
            "",
            *quality,
            "",
            *commands(data["quality"]),
            "",
            "## Speed against full attention",
            "",
            "Median seconds per query, 2 threads, quiet machine, bf16, the default model.",
            "",
            *speed,
            "",
            *commands(data["speed"]),
            "",
        ]
    )
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        sys.exit(f"{README} has no {BEGIN} ... {END} block to fill")
    before, rest = readme.split(BEGIN, 1)
    return page, before + readme_block + rest.split(END, 1)[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the rendered files are up to date")
    args = parser.parse_args()
    page, readme = render()
    stale = [p for p, text in ((PAGE, page), (README, readme)) if not p.is_file() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is stale: run python bench/render_results.py", file=sys.stderr)
        return 1 if stale else 0
    PAGE.write_text(page)
    README.write_text(readme)
    print(f"wrote {PAGE.relative_to(ROOT)} and the table in {README.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
