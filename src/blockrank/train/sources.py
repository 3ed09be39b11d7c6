"""A training recipe's data sources: one frozen dataclass per ``type``, built from the recipe's mappings by
:func:`parse_source`, which refuses unknown types, unknown keys and values of the wrong kind by name.

Every source gives its training examples (:meth:`Source.examples`) and the pools its teacher scores cover
(:meth:`Source.pools`); :func:`build_examples` and :func:`label_sources` run a recipe's list of them.
"""

from __future__ import annotations

import dataclasses
import os
import random
import types
import typing
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from blockrank.errors import ConfigError
from blockrank.eval.data import read_beir, read_candidates, read_qrels
from blockrank.train import teacher_scores
from blockrank.train.examples import (
    ICRExample,
    NDocs,
    Pool,
    pools_from_beir,
    pools_from_candidates,
    pools_from_synth,
    pools_from_titles,
    read_icr_jsonl,
    sample_examples,
    test_judged,
    unlabelled_pools,
)


@dataclass(frozen=True)
class Source(ABC):
    """What every source takes: its file or directory, its own teacher (instead of the recipe's, e.g.
    ``given+mpnet``) and its name in teacher-score files (default: derived from ``path``)."""

    kind: ClassVar[str]
    path: str
    teacher: str | None = None
    name: str | None = None

    def score_name(self, i: int, seed: int) -> str:
        """The source's name in teacher-score files (``i``: its index in the recipe)."""
        return self.name or self.stem

    @property
    def stem(self) -> str:
        return Path(self.path).name.removesuffix(".jsonl")

    @property
    def unlabelled(self) -> bool:
        """True if only a teacher can label this source's lists."""
        return False

    @abstractmethod
    def pools(self, i: int, seed: int, holdout: AbstractSet[str] = frozenset()) -> list[Pool]:
        """Every query's pool of documents, without the ``holdout`` queries."""

    def label_pools(self, i: int, seed: int, holdout: AbstractSet[str] = frozenset()) -> list[Pool]:
        """The pools :func:`label_sources` scores: those of every recipe that shares this source's score files."""
        return self.pools(i, seed, holdout)

    @abstractmethod
    def examples(
        self, i: int, seed: int, n_docs: NDocs, max_positives: int, holdout: AbstractSet[str] = frozenset()
    ) -> list[ICRExample]:
        """The source's training examples (seeded), without the ``holdout`` queries."""

    def as_dict(self) -> dict[str, Any]:
        """The mapping :func:`parse_source` reads back (a run's ``config.json``)."""
        return {"type": self.kind} | dataclasses.asdict(self)


@dataclass(frozen=True)
class SampledSource(Source):
    """A source of pools sampled into lists: ``offset``/``limit`` slice its queries, ``epochs`` gives each
    query that many examples (each a fresh sample and order), ``n_docs`` is its own list size or
    ``[low, high]`` range instead of the recipe's."""

    offset: int = 0
    limit: int | None = None
    epochs: int = 1
    n_docs: int | tuple[int, int] | None = None

    @abstractmethod
    def all_pools(self, i: int, seed: int) -> list[Pool]:
        """Every pool, before the slice and the holdout."""

    def label_pools(self, i: int, seed: int, holdout: AbstractSet[str] = frozenset()) -> list[Pool]:
        """Every pool, whatever the slice: a recipe that takes 200 queries and one that takes 600 then label the
        same way, and BM25's corpus statistics do not depend on which of them labelled first."""
        return [p for p in self.all_pools(i, seed) if p.query_id not in holdout]

    def pools(self, i: int, seed: int, holdout: AbstractSet[str] = frozenset()) -> list[Pool]:
        found = self.all_pools(i, seed)
        found = found[self.offset :] if self.limit is None else found[self.offset : self.offset + self.limit]
        return [p for p in found if p.query_id not in holdout]

    def examples(
        self, i: int, seed: int, n_docs: NDocs, max_positives: int, holdout: AbstractSet[str] = frozenset()
    ) -> list[ICRExample]:
        size = n_docs if self.n_docs is None else self.n_docs
        skipped: list[int] = []
        found = sample_examples(self.pools(i, seed, holdout), size, seed + i, self.epochs, skipped, max_positives=max_positives)
        what = f"data source {i} ({self.score_name(i, seed)})"
        if skipped[0]:
            warnings.warn(
                f"{what}: {skipped[0]} lists had fewer documents than n_docs={size} asked for and were skipped", stacklevel=3
            )
        if not found:
            raise ConfigError(f"{what}: no list has the n_docs={size} documents asked for; give the source a smaller n_docs")
        return found


@dataclass(frozen=True)
class BeirSource(SampledSource):
    """A BEIR directory's judged queries (``split``), positives graded ``>= min_grade``, BM25's ``top_k`` as
    hard negatives; the documents its test split judges stay out."""

    kind = "beir"
    split: str = "train"
    top_k: int = 100
    min_grade: int = 1

    def score_name(self, i: int, seed: int) -> str:
        """Named by what makes the pools: two recipes with different ``top_k`` never share (and rewrite) a file."""
        grade = "" if self.min_grade == 1 else f"-grade{self.min_grade}"
        return self.name or f"{self.stem}-{self.split}-top{self.top_k}{grade}"

    def all_pools(self, i: int, seed: int) -> list[Pool]:
        ds = read_beir(self.path, self.split)
        return pools_from_beir(ds.corpus, ds.queries, ds.qrels, self.top_k, self.min_grade, exclude=test_judged(self.path))


@dataclass(frozen=True)
class CandidatesSource(SampledSource):
    """Candidate lists (JSONL); with ``qrels``, candidates graded ``>= min_grade`` are positives, without,
    the lists train only through a teacher."""

    kind = "candidates"
    qrels: str | None = None
    min_grade: int = 2

    @property
    def unlabelled(self) -> bool:
        return self.qrels is None

    def all_pools(self, i: int, seed: int) -> list[Pool]:
        candidates = read_candidates(self.path)
        if self.qrels is None:
            return unlabelled_pools(candidates)
        return pools_from_candidates(candidates, read_qrels(self.qrels), self.min_grade)


@dataclass(frozen=True)
class TitlesSource(SampledSource):
    """Weak supervision: ``n`` titles of a BEIR corpus as queries, drawn with the recipe's seed plus the
    source's index."""

    kind = "titles"
    split: str = "train"
    n: int = 1000

    def score_name(self, i: int, seed: int) -> str:
        return self.name or f"{self.stem}-titles-{self.n}-seed{seed + i}"

    def all_pools(self, i: int, seed: int) -> list[Pool]:
        ds = read_beir(self.path, self.split)
        return pools_from_titles(ds.corpus, self.n, seed + i, exclude=test_judged(self.path))


@dataclass(frozen=True)
class SynthSource(SampledSource):
    """Synthetic queries ``blockrank synth`` wrote into ``path``, their text read from ``passages``."""

    kind = "synth"
    passages: tuple[str, ...] = ()

    def all_pools(self, i: int, seed: int) -> list[Pool]:
        return pools_from_synth(self.path, self.passages)


@dataclass(frozen=True)
class ICRSource(Source):
    """Ready examples in the ICR JSONL format, used as they are."""

    kind = "icr"

    def pools(self, i: int, seed: int, holdout: AbstractSet[str] = frozenset()) -> list[Pool]:
        """A query's pool is the union of its examples' documents."""
        pools: dict[str, Pool] = {}
        for ex in read_icr_jsonl(self.path):
            pool = pools.setdefault(ex.query_id, Pool(ex.query_id, ex.query, []))
            known = {d.id for d in pool.documents}
            pool.negatives += [d for d in ex.documents if d.id not in known]
        return [p for p in pools.values() if p.query_id not in holdout]

    def examples(
        self, i: int, seed: int, n_docs: NDocs, max_positives: int, holdout: AbstractSet[str] = frozenset()
    ) -> list[ICRExample]:
        return [ex for ex in read_icr_jsonl(self.path) if ex.query_id not in holdout]


SOURCE_TYPES: dict[str, type[Source]] = {
    cls.kind: cls for cls in (BeirSource, CandidatesSource, TitlesSource, SynthSource, ICRSource)
}


def source_keys(kind: str) -> set[str]:
    """The keys a source of this type takes in a recipe."""
    return {"type"} | {f.name for f in dataclasses.fields(SOURCE_TYPES[kind])}


def parse_source(raw: Any, i: int) -> Source:
    """The typed source for recipe entry ``i`` (a mapping such as ``{type: beir, path: ...}``); a mistake in it,
    such as a titles source's ``seed`` (its queries are drawn with the recipe's), is a :class:`ConfigError`."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"data source {i}: expected a mapping such as {{type: beir, path: ...}}, got {raw!r}")
    kind = raw.get("type")
    if kind not in SOURCE_TYPES:
        raise ConfigError(f"data source {i}: unknown type {kind!r} ({', '.join(SOURCE_TYPES)})")
    if "path" not in raw:
        raise ConfigError(f"data source {i} ({kind}): no path")
    where = f"data source {i} ({kind}, {raw['path']})"
    unknown = sorted(set(raw) - source_keys(kind))
    if unknown:
        raise ConfigError(
            f"{where}: unknown keys {', '.join(unknown)}; a {kind} source takes {', '.join(sorted(source_keys(kind)))}"
        )
    cls = SOURCE_TYPES[kind]
    hints = typing.get_type_hints(cls)
    return cls(**{k: _typed(v, hints[k], f"{where}: {k}") for k, v in raw.items() if k != "type"})


def _typed(value: Any, hint: Any, what: str) -> Any:
    """``value`` as ``hint`` asks (a YAML list becomes a tuple), or a ConfigError naming ``what``."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if option is type(None) and value is None or option in (int, str) and _is(value, option):
            return value
        if typing.get_origin(option) is tuple and isinstance(value, (list, tuple)):
            args = typing.get_args(option)
            if (len(args) == 2 and args[1] is Ellipsis or len(args) == len(value)) and all(_is(v, args[0]) for v in value):
                return tuple(value)
    raise ConfigError(f"{what}: expected {_describe(hint)}, got {value!r}")


def _is(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _describe(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint)


def parse_sources(raw: Sequence[Any]) -> list[Source]:
    return [parse_source(src, i) for i, src in enumerate(raw)]


def build_examples(
    sources: Sequence[Source],
    n_docs: NDocs,
    seed: int,
    max_positives: int = 3,
    counts: list[int] | None = None,
    teacher: str | None = None,
    scores_dir: str | os.PathLike | None = None,
    holdout: AbstractSet[str] = frozenset(),
) -> list[ICRExample]:
    """Examples from every source of a training recipe, shuffled; ``n_docs`` for the sources that set none.
    Each source's teacher (or the recipe's ``teacher``) labels its examples from the stored scores in
    ``scores_dir`` (see :mod:`blockrank.train.teacher_scores`; :func:`label_sources` writes them), never computed here.
    Queries in ``holdout`` are left out of every source; ``counts`` receives the examples each source gave."""
    examples: list[ICRExample] = []
    for i, src in enumerate(sources):
        mine = src.examples(i, seed, n_docs, max_positives, holdout)
        if chosen := src.teacher or teacher:
            attach_teacher(mine, chosen, src.score_name(i, seed), scores_dir)
        examples += mine
        if counts is not None:
            counts.append(len(mine))
    random.Random(seed).shuffle(examples)
    return examples


def attach_teacher(examples: list[ICRExample], teacher: str, source: str, scores_dir: str | os.PathLike | None) -> None:
    """Set each example's teacher scores: its members' stored scores, fused within the example's list."""
    if scores_dir is None:
        raise ConfigError(f"source {source} has teacher {teacher!r} but no directory of stored teacher scores was given")
    scores = teacher_scores.fused(teacher, source, scores_dir)
    for ex in examples:
        ex.teacher = scores(ex.query_id, ex.documents)
        ex.teacher_name = teacher


def label_sources(
    sources: Sequence[Source],
    teacher: str | None,
    scores_dir: str | os.PathLike,
    seed: int,
    holdout: AbstractSet[str] = frozenset(),
    dtype=None,
    max_tokens: int | None = None,
) -> dict[str, int]:
    """Compute and store the teacher scores every source's pools need (resumable); returns the queries
    newly scored per file."""
    added: dict[str, int] = {}
    for i, src in enumerate(sources):
        name = src.teacher or teacher
        if not name:
            continue
        pools = [
            (
                p.query_id,
                p.query,
                p.documents,
                None if p.first_stage is None else [p.first_stage.get(d.id, 0.0) for d in p.documents],
            )
            for p in src.label_pools(i, seed, holdout)
        ]
        added |= teacher_scores.compute_all(name, src.score_name(i, seed), scores_dir, pools, dtype, max_tokens)
    return added
