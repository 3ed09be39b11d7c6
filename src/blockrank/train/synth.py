"""Synthetic training data for a corpus without labels (InPars / Promptagator style).

Three stages, each resumable:

1. **generate**: an LLM continues a few-shot prompt with one search query per passage. Results are appended to
   ``queries.jsonl`` passage by passage (``{pid, query}`` or ``{pid, dropped: reason}``), so a restart
   skips what is done. Empty, overlong and copied queries are dropped and counted.
2. **candidates**: each kept query's BM25 neighbours in the same corpus (its source passage included);
3. **label**: a teacher scores every candidate list into stored teacher-score files
   (:mod:`blockrank.train.teacher_scores`); a query is kept only if the teacher ranks its source passage within
   ``keep_rank`` (consistency filtering).

The output holds ids, never passage text: ``lists.jsonl`` (``{qid, query, docids}``, the source passage
first) and the teacher scores, small enough to commit beside a recipe. ``blockrank train`` reads them as
``{type: synth, path: OUT, passages: [the files generated from]}``, the source passage the positive.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from blockrank.errors import InputError
from blockrank.eval.data import Candidates, DataFormatError, read_jsonl
from blockrank.files import append_synced, write_text_atomic
from blockrank.prompt import Document
from blockrank.train import teacher_scores

# Few-shot completion (InPars style), not an instruction: SmolLM2-135M-Instruct answers an instruction with
# "The passage is:" or a copy of the passage, but continues this pattern with a query. With one fixed set of shots
# it wrote "how to ..." for 87% of passages (many off-topic); drawing SHOTS_PER_PROMPT shots per passage from a
# varied pool gave on-topic questions and keyword queries alike, and the teacher kept 54% instead of 33% (48 MS MARCO
# pool passages, minilm, source in its top 3 of 30). Our own examples; "claim" is for corpora whose queries are
# statements (SciFact).
STYLES: dict[str, list[tuple[str, str]]] = {
    "web": [
        (
            "The Great Barrier Reef, off the coast of Queensland, is the world's largest coral reef system, made of over "
            "2,900 individual reefs stretching 2,300 km.",
            "how long is the great barrier reef",
        ),
        (
            "To reset a frozen iPhone, press and quickly release volume up, then volume down, then hold the side button "
            "until the Apple logo appears.",
            "how to force restart an iphone",
        ),
        (
            "Low-dose aspirin irreversibly blocks cyclooxygenase in platelets, which lowers thromboxane A2 and so reduces "
            "platelet aggregation for the life of the platelet.",
            "does aspirin reduce platelet aggregation",
        ),
        (
            "Marie Curie was the first woman to win a Nobel Prize, sharing the 1903 physics prize with Pierre Curie and "
            "Henri Becquerel for their work on radioactivity.",
            "who was the first woman to win a nobel prize",
        ),
        (
            "A Roth IRA is funded with after-tax dollars, so qualified withdrawals in retirement, earnings included, are "
            "free of federal income tax.",
            "roth ira withdrawals taxed",
        ),
        (
            "Hypothyroidism is an underactive thyroid gland. Common symptoms include fatigue, weight gain, feeling cold, "
            "dry skin and constipation.",
            "symptoms of underactive thyroid",
        ),
        (
            "The Treaty of Versailles was signed on 28 June 1919, five years to the day after the assassination of "
            "Archduke Franz Ferdinand.",
            "when was the treaty of versailles signed",
        ),
        (
            "Leaves change colour in autumn because shorter days stop chlorophyll production, which lets the yellow and "
            "orange carotenoids show through.",
            "why do leaves change color in the fall",
        ),
        (
            "Registered nurses in Texas earn a median of about $79,000 a year, somewhat below the national median for the "
            "profession.",
            "average rn salary in texas",
        ),
        (
            "Kilimanjaro, a dormant volcano in Tanzania, is the highest mountain in Africa at 5,895 metres above sea level.",
            "highest mountain in africa",
        ),
        (
            "Sourdough is leavened by a starter of wild yeast and lactic acid bacteria instead of baker's yeast; the acids "
            "give it its tangy taste.",
            "what makes sourdough bread sour",
        ),
        (
            "In baseball, a balk is an illegal motion by the pitcher that deceives a base runner; every runner then "
            "advances one base.",
            "balk meaning in baseball",
        ),
        (
            "Cats are obligate carnivores: they need taurine and other nutrients found only in animal tissue, so a vegan "
            "diet makes them ill.",
            "can cats be vegan",
        ),
        (
            "The Mediterranean climate has hot, dry summers and mild, wet winters, as in Southern California, central "
            "Chile and the Cape of South Africa.",
            "mediterranean climate characteristics",
        ),
    ],
    "claim": [
        (
            "Statins inhibit HMG-CoA reductase, the rate-limiting enzyme of cholesterol synthesis in the liver, and so "
            "lower circulating LDL cholesterol by 30-50%.",
            "Statins lower LDL cholesterol by inhibiting HMG-CoA reductase.",
        ),
        (
            "In a cohort of 12,000 adults followed for ten years, regular physical activity was associated with a 30% "
            "lower incidence of type 2 diabetes after adjustment for body mass index.",
            "Physical activity lowers the risk of type 2 diabetes independently of body weight.",
        ),
        (
            "Mice lacking both copies of the p53 gene developed normally but most formed spontaneous tumours, chiefly "
            "lymphomas, by six months of age.",
            "Loss of p53 causes spontaneous tumours in mice.",
        ),
        (
            "Paternal mitochondria enter the oocyte at fertilisation but are tagged by ubiquitin and degraded within a "
            "few cell divisions, so mitochondrial DNA is inherited from the mother.",
            "Paternal mitochondria are degraded after fertilisation.",
        ),
        (
            "In a randomised trial of 25,871 adults, daily vitamin D3 for a median of 5.3 years did not lower the "
            "incidence of invasive cancer or of major cardiovascular events.",
            "Vitamin D supplementation prevents cancer.",
        ),
        (
            "Mice with a mutant Foxp3 gene lack functional regulatory T cells and die of multi-organ autoimmune disease "
            "within weeks of birth.",
            "FOXP3 is required for the function of regulatory T cells.",
        ),
        (
            "miR-21 was elevated in tumour tissue from 80% of 200 patients with colorectal cancer, and high expression "
            "predicted shorter survival.",
            "High miR-21 expression predicts poor survival in colorectal cancer.",
        ),
        (
            "After one night without sleep, healthy young men showed 20% lower insulin sensitivity in a glucose "
            "tolerance test than after a normal night.",
            "Sleep deprivation reduces insulin sensitivity.",
        ),
        (
            "Knockdown of the autophagy gene ATG7 in cultured neurons led to the accumulation of ubiquitinated protein "
            "aggregates and cell death.",
            "Autophagy protects neurons from protein aggregates.",
        ),
        (
            "Children given peanut protein early in infancy were 80% less likely to develop peanut allergy by five years "
            "of age than those who avoided peanuts.",
            "Early peanut exposure increases the risk of peanut allergy.",
        ),
    ],
}
SHOTS_PER_PROMPT = 5
MAX_PASSAGE_CHARS = 1200
MAX_QUERY_WORDS = 24


@dataclass
class SynthStats:
    generated: int = 0
    dropped: Counter = field(default_factory=Counter)
    kept: int = 0
    inconsistent: int = 0


def clean_query(text: str, passage: str) -> tuple[str | None, str | None]:
    """The query from a generation, or ``(None, reason)``: empty, overlong, or a copy of the passage."""
    query = text.strip().split("\n")[0].strip().strip('"').strip()
    query = re.sub(r"^(search )?query\s*:\s*", "", query, flags=re.I).strip().strip('"').strip()
    if len(query) < 3 or not re.search(r"[A-Za-z]", query):
        return None, "empty"
    if len(query.split()) > MAX_QUERY_WORDS:
        return None, "overlong"
    norm = " ".join(query.lower().split())
    if norm in " ".join(passage.lower().split()) and len(norm.split()) > 4:
        return None, "copied"
    return query, None


def read_done(path: Path) -> dict[str, dict]:
    """Rows already written by an earlier (possibly interrupted) run; a torn last line is ignored."""
    done: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[str(row["pid"])] = row
    return done


class QueryGenerator:
    """Batched greedy generation (left padding) continuing a few-shot prompt; any causal LM.

    Each passage gets :data:`SHOTS_PER_PROMPT` shots of ``style`` drawn by its id and ``seed``, so its prompt is
    the same on every rerun."""

    def __init__(self, model, tokenizer, max_new_tokens: int = 32, batch_size: int = 8, style: str = "web", seed: int = 0):
        if style not in STYLES:
            raise InputError(f"unknown query style {style!r}; use {', '.join(STYLES)}")
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.shots, self.seed = STYLES[style], seed
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    def prompt(self, passage: str, key: str = "") -> str:
        shots = random.Random(f"{self.seed}:{key}").sample(self.shots, min(SHOTS_PER_PROMPT, len(self.shots)))
        return (
            "".join(f"Passage: {p}\nQuery: {q}\n\n" for p, q in shots)
            + f"Passage: {' '.join(passage[:MAX_PASSAGE_CHARS].split())}\nQuery:"
        )

    @torch.inference_mode()
    def generate(self, passages: list[str], keys: Sequence[str] | None = None) -> list[str]:
        """One generation per passage; ``keys`` (passage ids) pick each one's shots."""
        keys = keys if keys is not None else [""] * len(passages)
        batch = self.tokenizer(
            [self.prompt(p, k) for p, k in zip(passages, keys)], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.model.device)
        out = self.model.generate(
            **batch, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
        )
        return self.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)


def generate_queries(
    generator: QueryGenerator, passages: dict[str, Document], out: Path, stats: SynthStats | None = None
) -> dict[str, str]:
    """Stage 1: a query per passage, appended to ``out`` as it goes; returns ``{pid: query}`` for kept ones."""
    stats = stats or SynthStats()
    done = read_done(out)
    todo = [pid for pid in passages if pid not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as f:
        for i in tqdm(range(0, len(todo), generator.batch_size), desc="generate", unit="batch"):
            chunk = todo[i : i + generator.batch_size]
            for pid, text in zip(chunk, generator.generate([passages[p].content for p in chunk], chunk)):
                query, reason = clean_query(text, passages[pid].content)
                row = {"pid": pid, "query": query} if query else {"pid": pid, "dropped": reason, "raw": text[:200]}
                append_synced(f, json.dumps(row) + "\n")
                done[pid] = row
    for row in done.values():
        if "query" in row:
            stats.generated += 1
        else:
            stats.dropped[row["dropped"]] += 1
    return {pid: row["query"] for pid, row in done.items() if "query" in row and pid in passages}


def build_candidates(
    queries: dict[str, str],
    corpus: dict[str, Document],
    k: int,
    first_stage: str = "bm25",
    dtype: torch.dtype | None = None,
    max_tokens: int | None = None,
) -> list[Candidates]:
    """Stage 2: the top ``k`` from the corpus for each query, by BM25 (words in common) or all-MiniLM-L6-v2
    (``dense``: neighbours in meaning, the look-alikes a strong retriever returns), the source passage first."""
    from blockrank.eval.retrieval import retrieve

    lists = []
    synthetic = {f"synth:{pid}": q for pid, q in queries.items()}
    for c in retrieve(first_stage, corpus, synthetic, k, dtype=dtype, max_tokens=max_tokens):
        pid = c.qid.removeprefix("synth:")
        docs = [d for d in c.documents if d.id != pid][: k - 1]
        lists.append(Candidates(c.qid, c.query, [corpus[pid], *docs], [0.0] * (len(docs) + 1)))
    return lists


def score_and_filter(
    lists: list[Candidates],
    teacher: str,
    scores_dir: str | os.PathLike,
    source: str,
    keep_rank: int,
    stats: SynthStats | None = None,
    dtype: torch.dtype | None = None,
    max_tokens: int | None = None,
) -> list[Candidates]:
    """Stage 3: the teacher's members score every list into ``scores_dir/SOURCE.MEMBER.jsonl`` (appended,
    resumable: the files training reads); a query is kept only if the fused teacher ranks its source passage
    (first) within its top ``keep_rank``."""
    stats = stats or SynthStats()
    teacher_scores.compute_all(
        teacher, source, scores_dir, [(c.qid, c.query, c.documents, None) for c in lists], dtype, max_tokens
    )
    scores_of = teacher_scores.fused(teacher, source, scores_dir)
    kept = []
    for c in lists:
        scores = scores_of(c.qid, c.documents)
        if sum(s > scores[0] for s in scores) >= keep_rank:
            stats.inconsistent += 1
            continue
        kept.append(Candidates(c.qid, c.query, c.documents, scores))
    stats.kept = len(kept)
    return kept


def write_lists(lists: list[Candidates], path: Path) -> None:
    """The kept lists as ids only (``{qid, query, docids}``, the source passage first), written atomically:
    small enough to commit, and :func:`read_lists` with the passages rebuilds them."""
    write_text_atomic(
        path, "".join(json.dumps({"qid": c.qid, "query": c.query, "docids": [d.id for d in c.documents]}) + "\n" for c in lists)
    )


def read_lists(path: Path, passages: dict[str, Document]) -> list[Candidates]:
    """Lists written by :func:`write_lists`, their passages looked up in ``passages``; an id none of them
    holds is refused, naming the file."""
    out = []
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            qid, query, docids = str(row["qid"]), str(row["query"]), [str(d) for d in row["docids"]]
        except (KeyError, TypeError) as err:
            raise DataFormatError(f"{path}, line {n}: missing or malformed field ({err})") from None
        if not docids:
            raise DataFormatError(f"{path}, line {n} (query {qid}): no document ids")
        missing = [d for d in docids if d not in passages]
        if missing:
            raise DataFormatError(
                f"{path}, line {n} (query {qid}): passage {missing[0]!r} is in none of the passage "
                "files given: name the files the lists were built from"
            )
        out.append(Candidates(qid, query, [passages[d] for d in docids], [0.0] * len(docids)))
    return out


def read_passages(paths: Sequence[str | os.PathLike], exclude: Iterable[str] = ()) -> dict[str, Document]:
    """Passages from BEIR ``corpus.jsonl`` files (or their directories) and candidate-list JSONLs (every
    candidate, deduplicated by id). Ids in ``exclude`` are left out (e.g. evaluation sets' judged passages)."""
    skip = set(exclude)
    out: dict[str, Document] = {}
    for path in map(Path, paths):
        if path.is_dir():
            path = path / "corpus.jsonl"
        for row in read_jsonl(path):
            if "candidates" in row:
                for c in row["candidates"]:
                    out.setdefault(str(c["docid"]), Document(str(c["docid"]), str(c["text"])))
            else:
                pid = str(row.get("_id", row.get("id")))
                out.setdefault(pid, Document(pid, str(row.get("text", "")), str(row.get("title") or "")))
    return {pid: d for pid, d in out.items() if pid not in skip and d.text.strip()}


def sample(passages: dict[str, Document], n: int | None, seed: int) -> dict[str, Document]:
    """A seeded subset of ``n`` passages (all of them if ``n`` is None). A larger ``n`` with the same seed
    extends the smaller sample, so a later session can ask for more and generate only the new ones."""
    order = sorted(passages)
    random.Random(seed).shuffle(order)
    return {pid: passages[pid] for pid in order[:n]}


def excluded_passages(paths: Iterable[str | os.PathLike]) -> tuple[set[str], set[str]]:
    """Ids and normalised texts to keep out of generation: every candidate of a candidate-list JSONL, or
    every document of a qrels file (evaluation sets such as DL19, SciFact test)."""
    from blockrank.eval.data import read_qrels

    ids, texts = set(), set()
    for path in map(Path, paths):
        if path.suffix == ".jsonl":
            for row in read_jsonl(path):
                for c in row.get("candidates", []):
                    ids.add(str(c["docid"]))
                    texts.add(" ".join(str(c["text"]).split()).lower())
        else:
            ids |= {d for docs in read_qrels(path).values() for d in docs}
    return ids, texts


def synthesize(
    passages_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    generator: QueryGenerator,
    teacher: str,
    scores_dir: str | os.PathLike | None = None,
    n: int | None = None,
    seed: int = 0,
    k: int = 20,
    keep_rank: int = 3,
    exclude: Iterable[str | os.PathLike] = (),
    teacher_dtype: torch.dtype | None = None,
    teacher_max_tokens: int | None = 128,
    first_stage: str = "bm25",
) -> SynthStats:
    """All three stages over a seeded sample of ``n`` passages; safe to rerun after an interruption, or with a
    larger ``n`` to add queries. Writes ``queries.jsonl``, ``lists.jsonl`` and ``stats.json`` to ``out_dir``
    and the teacher scores to ``scores_dir`` (default ``out_dir/teacher-scores``), under the name
    ``out_dir`` has: the name a recipe's ``{type: synth, path: out_dir}`` source reads them by."""
    out_dir = Path(out_dir)
    ids, texts = excluded_passages(exclude)
    corpus = {pid: d for pid, d in read_passages(passages_paths, ids).items() if " ".join(d.text.split()).lower() not in texts}
    if not corpus:
        raise InputError(f"{', '.join(map(str, passages_paths))}: no passages left to generate from")
    stats = SynthStats()
    queries = generate_queries(generator, sample(corpus, n, seed), out_dir / "queries.jsonl", stats)
    lists = build_candidates(queries, corpus, k, first_stage, teacher_dtype, teacher_max_tokens) if queries else []
    kept = (
        score_and_filter(
            lists,
            teacher,
            scores_dir or out_dir / "teacher-scores",
            out_dir.name,
            keep_rank,
            stats,
            teacher_dtype,
            teacher_max_tokens,
        )
        if lists
        else []
    )
    write_lists(kept, out_dir / "lists.jsonl")
    write_text_atomic(
        out_dir / "stats.json",
        json.dumps(
            {
                "passages": len(corpus),
                "generated": stats.generated,
                "dropped": dict(stats.dropped),
                "inconsistent": stats.inconsistent,
                "kept": stats.kept,
                "teacher": teacher,
                "keep_rank": keep_rank,
                "candidates": k,
                "first_stage": first_stage,
            },
            indent=1,
        )
        + "\n",
    )
    return stats
