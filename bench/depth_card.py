"""MODEL_CARD.md's "Quality at depth" section, from the evaluations of bench/depth_results.sh (bench/results/depth)."""

from __future__ import annotations

import json
from pathlib import Path

import gathered  # bench/, the script's own directory, is on sys.path

from blockrank.eval import CONDENSED, pyplot

ROOT = Path(__file__).resolve().parents[1]
R = ROOT / "bench" / "results" / "depth"
RUN = "smollm2-depth"
SETS = {
    "dl19-splade": "DL19 SPLADE++ top-100",
    "dl19-bm25": "DL19 BM25 top-100",
    "scifact": "SciFact test (BM25 top-100)",
    "wikiqa": "WikiQA test",
}
MODELS = {
    "before": "BlockRank, the default (cd01e7a)",
    "after": f"BlockRank after `{RUN}` (not shipped: SciFact fell)",
    # later candidates, evaluated by `bash bench/compare_models.sh TAG MODEL` (docs/lab-notes.md)
    "smollm2-synth-175": "BlockRank after `smollm2-synth`, step 175 (not shipped: SciFact fell)",
    "avg-175": "mean of the default and smollm2-synth-175 (not shipped: SciFact fell)",
    "smollm2-synth-375": "smollm2-synth-175 after 200 more steps (not shipped: below it everywhere)",
    "synth-depth": (
        "smollm2-synth-175 after 80 steps with deep SPLADE++ lists (`smollm2-synth-depth`; the shipped default since 0.6)"
    ),
    "synth-depth-log": "the same run with log-mass logits (`mass_logits=log temperature=1`; not shipped: level with it)",
    "synth-new": "synth-depth after 200 steps on unseen synthetic queries (`smollm2-synth-new`; not shipped: level with it)",
    "synth-qwen": "synth-depth after 150 steps on Qwen-written synthetic queries (`smollm2-synth-qwen`; not shipped: below it)",
}
BASELINES = {"given": "given order (first stage)", "minilm": "all-MiniLM-L6-v2 rerank"}
TEACHERS = ("given", "minilm", "mpnet", "minilm+mpnet", "given+minilm", "given+mpnet", "given+minilm+mpnet")


def load(name: str, file: str = "summary.json") -> dict | None:
    return gathered.load(R, name, file)


def _wtl(r: dict, measure: str) -> str:
    w = r["vs_given_order"][measure]
    return f"{w['wins']}/{w['ties']}/{w['losses']}"


def results_table() -> list[str]:
    head = "| set | reranker | nDCG@10 | condensed nDCG@10 | Judged@10 | W/T/L vs given (nDCG@10) | W/T/L vs given (condensed) |"
    out = [head, "|---|---|---|---|---|---|---|"]
    for key, label in SETS.items():
        rows: list[tuple[str, dict, dict]] = []
        for model, model_label in MODELS.items():
            s = load(f"{key}-{model}")
            if s is None:
                continue
            if model == "before":
                rows += [(BASELINES[b], s["rerankers"][b], s) for b in BASELINES if b in s["rerankers"]]
            rows.append((model_label, s["rerankers"]["blockrank"], s))
        for name, r, s in rows:
            m = r["metrics"]
            given = name == BASELINES["given"]
            # qrels that list only relevant documents (SciFact's) leave condensed nDCG nothing to tell apart
            informative = s.get("judges_non_relevant", True)
            condensed = f"{m[CONDENSED]:.3f}" if informative else "n/a"
            wtl = "-" if given or not informative else _wtl(r, CONDENSED)
            out.append(
                f"| {label} | {name} | {m['nDCG@10']:.3f} | {condensed} | {m['Judged@10']:.2f} | "
                f"{'-' if given else _wtl(r, 'nDCG@10')} | {wtl} |"
            )
    return out


def depth_table() -> list[str]:
    curves = {m: d["curve"] for m in MODELS if (d := load(f"depth-{m}", "depth.json"))}
    if not curves:
        return ["(no depth curve yet)"]
    depths = next(iter(next(iter(curves.values())).values()))["depth"]
    out = ["| reranker | " + " | ".join(f"N={d}" for d in depths) + " |", "|---" * (len(depths) + 1) + "|"]
    rows = [(BASELINES[b], curves["before"][b]) for b in BASELINES if "before" in curves and b in curves["before"]]
    rows += [(MODELS[m], c["blockrank"]) for m, c in curves.items()]
    for name, row in rows:
        out.append(f"| {name} | " + " | ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(row["nDCG@10"], row[CONDENSED])) + " |")
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, m in zip(axes, ("nDCG@10", CONDENSED)):
        for name, row in rows:
            ax.plot(row["depth"], row[m], marker="o", label=name)
        ax.set(xlabel="candidates reranked (DL19 SPLADE++)", ylabel=m, xscale="log")
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(R / "depth-curve.png", dpi=120)
    plt.close(fig)
    return [
        "![nDCG@10 and condensed nDCG@10 against depth](bench/results/depth/depth-curve.png)",
        "",
        "Each cell: nDCG@10 / condensed nDCG@10, reranking the first N SPLADE++ candidates of each DL19 query.",
        "",
        *out,
    ]


def teachers_table() -> list[str]:
    sets = {fs: s for fs in ("bm25", "splade") if (s := load(f"teachers-dev-{fs}"))}
    if not sets:
        return ["(no teacher comparison yet)"]
    out = [
        "| teacher | " + " | ".join(f"DL21 dev {fs}: nDCG@10 / condensed / W-T-L vs given" for fs in sets) + " |",
        "|---" * (len(sets) + 1) + "|",
    ]
    for t in TEACHERS:
        cells = []
        for s in sets.values():
            r = s["rerankers"].get(t)
            cells.append(
                "-"
                if r is None
                else f"{r['metrics']['nDCG@10']:.3f} / {r['metrics'][CONDENSED]:.3f} / "
                f"{_wtl(r, CONDENSED) if t != 'given' else '-'}"
            )
        out.append(f"| {'given order' if t == 'given' else t} | " + " | ".join(cells) + " |")
    n = next(iter(sets.values()))["queries"]
    intro = (
        f"The {n} DL21 queries of `configs/dl21-dev.qids` (held out of every source of `configs/{RUN}.yaml`), "
        "100 candidates from each first stage; embeddings in bf16. `given` is the list's own first-stage score; "
        "a fusion is the mean of its members' per-list z-scores."
    )
    return [intro, "", *out]


def recipe() -> list[str]:
    """The run's recipe and data, from its recorded config and dry run."""
    cfg_path, data_path = R / f"{RUN}.config.json", R / f"{RUN}.data.json"
    if not cfg_path.is_file():
        return []
    cfg = json.loads(cfg_path.read_text())
    data = json.loads(data_path.read_text()) if data_path.is_file() else []
    rows = [json.loads(x) for x in (R / f"{RUN}.log.jsonl").read_text().splitlines() if x.strip()]
    last = rows[-1]
    out = [
        f"- **Recipe:** `configs/{RUN}.yaml`, continuing the LoRA adapter `{cfg['init_adapter']}` "
        f"(the default shipped at cd01e7a, r={cfg['lora']['r']}) for {last['step']} steps = {last['examples']} "
        f"examples in {last['elapsed_s'] / 60:.0f} min on 2 threads (dev evaluations included; short test runs and "
        "the re-scoring of stored evaluations shared the cores at times). "
        f"Aux-only at l* = {cfg['layer']}, loss = {cfg['aux_weight']}·InfoNCE + {cfg['kd_weight']}·KL to the source's teacher "
        f"(z-scored within each list, teacher temperature {cfg['teacher_temperature']}), lr {cfg['lr']}, "
        f"{cfg['block_tokens']}-token documents.",
        "- **Sources** (examples available; the run draws its examples from the shuffled mixture):",
    ]
    out += [f"  - {n}: `{json.dumps(r['source'])}`" for r, n in ((r, r["examples"]) for r in data)]
    return out


def training_curve() -> list[str]:
    path = R / f"{RUN}.log.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
    dev = [r for r in rows if "dev_score" in r]
    if not dev:
        return ["(no training log yet)"]
    keys = [k for k in dev[0] if k.startswith("dev_") and k != "dev_score"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in [*keys, "dev_score"]:
        ax.plot([r["examples"] for r in dev], [r[k] for r in dev], marker="o", label=k, lw=2.5 if k == "dev_score" else 1)
    ax.set(xlabel="training examples", ylabel="nDCG@10 (held-out DL21, 100 candidates)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(R / "training-curve.png", dpi=120)
    plt.close(fig)
    out = [
        "![dev nDCG@10 against training examples](bench/results/depth/training-curve.png)",
        "",
        "| step | examples | " + " | ".join(keys) + " | dev_score |",
        "|---" * (len(keys) + 3) + "|",
    ]
    out += [
        f"| {r['step']} | {r['examples']} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + f" | {r['dev_score']:.3f} |"
        for r in dev
    ]
    return out


INTRO = (
    "Users rerank the top 100 of a strong first stage, so every set here is reranked at 100 candidates "
    "(`bash bench/depth_results.sh`). Plain nDCG@10 counts passages no assessor judged as non-relevant, which "
    "overstates the harm on lists from a retriever newer than the judgement pools, so each set also gets condensed "
    "nDCG@10 (unjudged passages dropped before ranking) and Judged@10. W/T/L counts queries above, equal to or "
    "below the given order; condensed nDCG@10 reads n/a where the qrels list only relevant documents (SciFact). "
    "Speed is reported in docs/results.md, on a quiet machine."
)


def section() -> list[str]:
    return [
        "## Quality at depth",
        "",
        INTRO,
        "",
        *results_table(),
        "",
        "### Depth curve (DL19 SPLADE++)",
        "",
        *depth_table(),
        "",
        "### Teachers on the DL21 dev lists",
        "",
        *teachers_table(),
        "",
        f"### Training at depth (`configs/{RUN}.yaml`)",
        "",
        *recipe(),
        "",
        "The dev queries had been trained on by the adapter this run starts from (through its DL21 SPLADE++ "
        "source; no DL21 query was clean of it), so the step-0 row is optimistic and a fall from it may be "
        "forgetting as much as harm: the report sets above decide.",
        "",
        *training_curve(),
        "",
    ]
