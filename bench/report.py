"""docs/lab-notes.md's measured sections from the JSON files under bench/results (no number is typed by hand).

python bench/report.py                            # print them
python bench/report.py --update docs/lab-notes.md   # replace them there, keeping the sections written by hand
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import gathered  # bench/, the script's own directory, is on sys.path
import group_cost

from blockrank.files import write_text_atomic

RESULTS = Path(__file__).parent / "results"
EVALS = {
    "dl19": "blockrank eval --data $D/trec-dl/dl19-bm25-top100.jsonl --qrels $D/trec-dl/qrels.dl19-passage.txt "
    "--model SmolLM2-135M-Instruct --rerankers given,minilm,blockrank,blockrank-causal --top-k 100 --dtype bf16 "
    "--out bench/results/eval/dl19",
    "dl19-first10": "blockrank eval --data $D/trec-dl/dl19-bm25-top100.jsonl --qrels $D/trec-dl/qrels.dl19-passage.txt "
    "--model SmolLM2-135M-Instruct --rerankers given,blockrank,blockrank-decode,first,sliding --top-k 100 --limit 10 "
    "--dtype bf16 --out bench/results/eval/dl19-first10",
    "scifact": "blockrank eval --data $D/scifact --rerankers given --top-k 100 --out bench/results/eval/scifact",
    "scifact-dense": "blockrank eval --data $D/scifact --first-stage dense --rerankers given --top-k 100 "
    "--out bench/results/eval/scifact-dense",
    "scifact-first30": "blockrank eval --data $D/scifact --model SmolLM2-135M-Instruct "
    "--rerankers given,minilm,blockrank,blockrank-causal --top-k 50 --limit 30 --dtype bf16 "
    "--out bench/results/eval/scifact-first30",
    "scifact-first10": "blockrank eval --data $D/scifact --model SmolLM2-135M-Instruct "
    "--rerankers given,sliding,blockrank-decode,first --top-k 50 --limit 10 --dtype bf16 "
    "--out bench/results/eval/scifact-first10",
}
NAMES = {
    "given": "the given order (first stage)",
    "minilm": "all-MiniLM-L6-v2 (rerank candidates)",
    "blockrank": "BlockRank attention mode (sparse)",
    "blockrank-causal": "full causal attention, attention mode",
    "blockrank-decode": "BlockRank decode mode",
    "first": "FIRST-style first-id logits",
    "sliding": "RankGPT-style sliding window (20/10)",
}


def fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def speed_section(path: Path) -> list[str]:
    r = json.loads(path.read_text())
    m = r["machine"]
    out = [
        f"### {path.stem}",
        "",
        f"Machine: {m['cpu']}, {m['threads']} threads, {m['device']}, torch {m['torch']}. Model "
        f"`{Path(r['model']).name}` in {r['dtype']}, l* = {r['layer']}, "
        + (
            f"documents of {r['doc_tokens']} tokens (+ label)"
            if r.get("fixed_length", True)
            else f"real passages as they are (cut only beyond {r['doc_tokens']} tokens), the same text for every pass"
        )
        + f", {r['repeats']} interleaved repeats, medians. Measured dense matmul: "
        f"{r['matmul_gflops']:.0f} GFLOP/s. Command: `{r.get('command', '')}`",
        "",
    ]
    ran = [c for c in r["configs"] if any(x.get(f"{c}_s") for x in r["summary"])]
    tag = {c: r["configs"][c].split()[0] for c in ran}  # "(a)", "(a')", ...
    out += [f"- {r['configs'][c]}" for c in ran]
    out += [
        "",
        "Efficiency, useful GFLOP/s (% of the dense matmul) and latency, median seconds per query:",
        "",
        "| N | tokens | "
        + " | ".join(f"GFLOP/s {tag[c]}" for c in ran)
        + " | "
        + " | ".join(f"{tag[c]} s" for c in ran)
        + " | (c)/(a) | (c*)/(a) | ms/doc (a) | peak MB "
        + "/".join(tag[c] for c in ran)
        + " | max score diff (a)-(b) |",
        "|---" * (2 + 2 * len(ran) + 5) + "|",
    ]
    for x in r["summary"]:
        gflops = [f"{x[f'{c}_gflops']:.0f} ({x[f'{c}_pct_of_matmul']:.0f}%)" if x.get(f"{c}_gflops") else "-" for c in ran]
        times = [
            fmt(x[f"{c}_s"], ".2f") if x.get(f"{c}_s") else (f"skipped: {x[f'{c}_note']}" if x.get(f"{c}_note") else "-")
            for c in ran
        ]
        out.append(
            f"| {x['n_docs']} | {x['tokens']} | " + " | ".join(gflops + times) + " | "
            f"{fmt(x.get('full_over_sparse'), '.2f')} | {fmt(x.get('causal_over_sparse'), '.2f')} | "
            f"{fmt(x.get('ms_per_doc'), '.0f')} | "
            + "/".join(fmt(x.get(f"{c}_mem_mb"), ".0f") for c in ran)
            + f" | {fmt(x.get('reference_max_score_diff'), '.1e')} |"
        )
    return out + [""]


def profile_section(path: Path) -> list[str]:
    """bench/profile_passes.py's breakdown: share of time by kind of work, per pass."""
    r = json.loads(path.read_text())
    m, passes = r["machine"], r["passes"]
    out = [
        f"### {path.stem}",
        "",
        f"Machine: {m['cpu']}, {m['threads']} threads, torch {m['torch']}. Model `{Path(r['model']).name}` in {r['dtype']}, "
        f"l* = {r['layer']}, N = {r['n_docs']} passages, {r['tokens']} tokens, {r['repeats']} profiled calls after a "
        f"warm-up. Measured dense matmul: {r['matmul_gflops']:.0f} GFLOP/s. Command: `{r['command']}`",
        "",
        "| share of time | " + " | ".join(passes) + " |",
        "|---|" + "---|" * len(passes),
    ]
    kinds = list(next(iter(passes.values()))["buckets_s"])
    for kind in kinds:
        if not any(p["buckets_s"].get(kind, 0) for p in passes.values()):
            continue
        out.append(
            f"| {kind} | "
            + " | ".join(
                f"{100 * p['buckets_s'].get(kind, 0) / p['seconds']:.0f}% ({1000 * p['buckets_s'].get(kind, 0):.0f} ms)"
                for p in passes.values()
            )
            + " |"
        )
    out.append("| total under the profiler | " + " | ".join(f"{p['seconds']:.2f} s" for p in passes.values()) + " |")
    out.append("| total without it (median) | " + " | ".join(f"{p['seconds_unprofiled']:.2f} s" for p in passes.values()) + " |")
    return out + [""]


def eval_section(name: str) -> list[str]:
    r = gathered.load(RESULTS / "eval", name)
    if r is None:
        return [f"### {name}", "", "(not run)", ""]
    first = next(iter(r["rerankers"].values()))
    metrics = list(first["metrics"])
    out = [
        f"### {r['dataset']}: {name}",
        "",
        f"{r['queries']} queries, relevant = grade >= {r['relevance_threshold']}, model "
        f"`{Path(str(r['config'].get('model') or 'SmolLM2-135M-Instruct (untrained)')).name}`, "
        f"dtype {r['config'].get('dtype') or 'fp32'}, top-{r['config'].get('top_k')}, "
        f"commit `{(r['git_commit'] or '')[:10]}`.",
        "",
        f"`{EVALS[name]}`",
        "",
        "| reranker | " + " | ".join(metrics) + " | s/query mean | p50 | p95 | tokens/query |",
        "|---|" + "---|" * (len(metrics) + 4),
    ]
    for key, x in r["rerankers"].items():
        lat = x["latency_s"]
        out.append(
            f"| {NAMES.get(key, key)} | "
            + " | ".join(fmt(x["metrics"][m], ".4f") for m in metrics)
            + f" | {lat['mean']:.2f} | {lat['p50']:.2f} | {lat['p95']:.2f} | {x['tokens_per_query']:.0f} |"
        )
    return out + [""]


def whole_documents_section() -> list[str]:
    """The default reranker reading whole documents (split into passages) against its first block only."""
    split = RESULTS / "split" / "split.json"
    if not split.exists():
        return []
    rows = json.loads(split.read_text())
    out = [
        "## Whole documents",
        "",
        "The default reranker with documents split into passages of its 64-token block (the default) against the same "
        "reranker reading only each document's first block (`--no-split`), 100 candidates, every query of the set. "
        "`bash bench/split_results.sh SET DTYPE` (two one-thread lanes side by side; `THREADS=2` runs them one after "
        "the other on two threads). Each row names its machine, precision and threads: compare latencies within a set.",
        "",
        "| set | documents read | nDCG@10 | condensed nDCG@10 | Judged@10 | s/query (mean) | tokens/query "
        "| machine, dtype, threads |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["set"], r["mode"])):
        m = r["machine"]
        out.append(
            f"| {r['set']} | {r['mode']} | {fmt(r['nDCG@10'], '.3f')} | {fmt(r['condensed'], '.3f')} | "
            f"{fmt(r['Judged@10'], '.2f')} | {r['latency_s_mean']:.1f} | {r['tokens_per_query']:.0f} | "
            f"{m.get('cpu')}, {r['dtype']}, {m.get('threads')} |"
        )
    sets = {r["set"] for r in rows}
    return out + [
        "",
        "The DL19 timings are relative only: that CPU had AVX2 and no native bf16, and tests shared the cores at "
        "times. Many DL19 passages are a little over 64 tokens, so splitting adds a short tail passage that competes "
        "with full blocks under max pooling. A document whose answer follows ~550 tokens of unrelated text "
        "ranks first when split and last when not (`tests/test_reranker.py`). "
        + (
            ""
            if any("scifact" in x for x in sets)
            else "SciFact (whole abstracts, 4-5 passages each) is not measured yet: `bash bench/split_results.sh scifact bf16`."
        ),
        "",
    ]


def main() -> None:
    lines = [
        "# Results",
        "",
        "Every number below is read from the JSON files under `bench/results/` by `python bench/report.py`;",
        "`bash bench/run_results.sh` reruns everything (about an hour on the 2-core CPU). `$D` is `../shared/data`.",
        "Each speed table names its model (speed does not depend on the weights' values). The quality tables use the",
        "*untrained* base SmolLM2-135M-Instruct: they measure the machinery and the baselines; the trained default",
        "is compared in `MODEL_CARD.md`. The latencies in the quality tables were taken",
        "while other jobs (tests, CI) shared the two cores at times; the speed tables are the timing reference.",
        "",
        "## Speed",
        "",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        if path.stem.startswith(("speed", "core")):
            lines += speed_section(path)
    sweep = sorted(RESULTS.glob("groups-*.json"), key=lambda q: int(q.stem.split("-")[1]))
    if sweep:
        reports = [json.loads(q.read_text()) for q in sweep]
        ns = [x["n_docs"] for x in reports[0]["summary"]]
        lines += [
            "### Group size of the document-major pass",
            "",
            f"Median seconds per query of (a) by `--batch-tokens` (documents x padded length per group), "
            f"same machine and model as above. Command: `{reports[0]['command']}` for each size.",
            "",
            "| batch tokens | " + " | ".join(f"N={n}" for n in ns) + " |",
            "|---" * (1 + len(ns)) + "|",
        ]
        for q, x in zip(sweep, reports):
            lines.append(f"| {q.stem.split('-')[1]} | " + " | ".join(fmt(r.get("sparse_s"), ".2f") for r in x["summary"]) + " |")
        lines.append("")
    for path in sorted(RESULTS.glob("group-cost-*.json")):
        lines += [f"### {path.stem}", "", *group_cost.table(json.loads(path.read_text())), ""]
    for path in sorted((RESULTS / "profile").glob("*.json")):
        lines += profile_section(path)
    precision = RESULTS / "precision.json"
    if precision.exists():
        p = json.loads(precision.read_text())
        lines += [
            "### bf16 vs fp32",
            "",
            f"Untrained base model, DL19, first {p['queries']} queries x {p['docs']} BM25 passages, l* = {p['layer']}: "
            f"top-10 overlap mean {p['mean_top10_overlap']:.1f}/10 (min {p['min_top10_overlap']}), "
            f"Kendall tau mean {p['mean_kendall_tau']:.3f}. `python bench/precision.py --queries 10 --docs 100`",
            "",
        ]
    for load in sorted(RESULTS.glob("load*.json")):
        x = json.loads(load.read_text())
        lines += [
            f"### HTTP service soak: {load.stem}",
            "",
            f"`{x['command']}`: {x['requests']} requests in {x['wall_s']:.0f} s (Poisson arrivals at "
            f"{x['rate_per_s']:g}/s for {x['duration_s']:g} s) against `blockrank serve`'s app on loopback, model: "
            f"{x['model']}, {x['threads']} torch threads. {x['machine_note']}",
            "",
            "| kind of request | status (or client gave up) | count |",
            "|---|---|---|",
        ]
        lines += [f"| {k.split(' ', 1)[0]} | {k.split(' ', 1)[1]} | {n} |" for k, n in x["statuses"].items()]
        lines += [
            "",
            f"Valid requests: p50 {x['valid_p50_ms']:.0f} ms, p95 {x['valid_p95_ms']:.0f} ms; "
            f"{x['valid_answered']} answered, {x['valid_wrong']} with a wrong ranking (each is checked against "
            f"the same reranker in-process). Healthy afterwards: {'yes' if x['healthy_after'] else 'NO'}. "
            f"Resident memory {x['rss_mib_before']:.0f} MiB before the stream, {x['rss_mib_after']:.0f} MiB "
            "after (both after a warm-up and a garbage collection).",
            "",
        ]
        if x.get("rss_second_half_high") is not None:
            lines += [
                f"Over the second half: {x['rss_second_half_low']:+.1%} / {x['rss_second_half_high']:+.1%} around its "
                f"median of {x['rss_second_half_median_mib']:.0f} MiB, trend {x['rss_second_half_trend']:+.1%} "
                f"(flat means within +-5%: {'yes' if x['memory_flat'] else 'NO'}); glibc malloc arenas: "
                f"{x.get('malloc_arenas') or 'glibc default or MALLOC_ARENA_MAX'}.",
                "",
            ]
    lines += whole_documents_section()
    lines += ["## Quality", ""]
    for name in EVALS:
        lines += eval_section(name)
    text = "\n".join(lines)
    if len(sys.argv) == 3 and sys.argv[1] == "--update":
        path = Path(sys.argv[2])
        write_text_atomic(path, update(path.read_text(), text))
    else:
        print(text)


def sections(text: str) -> list[tuple[str, str]]:
    """``text`` cut before each ``## `` heading: (heading, section) pairs, the heading of the first part ``""``."""
    parts = re.split(r"(?m)^(?=## )", text)
    return [(part.splitlines()[0] if part.startswith("## ") else "", part) for part in parts]


def update(document: str, generated: str) -> str:
    """``document`` with each section it shares with ``generated`` (same ``## `` heading, or the opening part)
    replaced by the generated one, and the sections written by hand kept where they are."""
    new = dict(sections(generated))
    kept = [new.pop(heading, part) for heading, part in sections(document)]
    return "".join(kept + list(new.values()))


if __name__ == "__main__":
    main()
