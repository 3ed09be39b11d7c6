"""Where names live: each wing's surface for scripts, loaded on first use, and the module names of 0.6.

A wing's surface (:func:`surface`) is the short list of its names that bench/ scripts and notebooks may use; the
rest of a wing may change without notice. ``import blockrank.scoring`` and the other 0.6 module names still work
and give the moved module itself, with one ``DeprecationWarning`` naming the new place (removed in 0.8).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

# Each wing's surface for scripts: submodule -> the names it gives. Everything else may change without notice.
SURFACES: dict[str, dict[str, tuple[str, ...]]] = {
    "blockrank.eval": {
        "evaluation": (
            "load_eval_set",
            "evaluate",
            "CONDENSED",
        ),
        "data": (
            "read_candidates",
            "read_qrels",
            "read_run",
            "read_beir",
            "read_corpus",
            "read_jsonl",
            "Candidates",
        ),
        "baselines": ("make_scorers",),
        "machine": (
            "machine_info",
            "pyplot",
        ),
        "benchmark": (
            "matmul_gflops",
            "full_prefill",
            "rss_bytes",
            "training_gflop_per_token",
        ),
        "retrieval": ("retrieve",),
        "encoders": ("load_teacher",),
    },
    "blockrank.train": {
        "examples": (
            "read_qids",
            "pools_from_beir",
        ),
        "training": (
            "load_config",
            "examples_of",
            "Trainer",
            "TrainConfig",
            "LoraSettings",
        ),
        "sources": (
            "SOURCE_TYPES",
            "source_keys",
            "BeirSource",
        ),
        "losses": (
            "distill_loss",
            "document_logits",
        ),
        "calibration_lists": (
            "collect",
            "evidence",
            "varied_lists",
        ),
    },
    "blockrank.kernel": {
        "attention": (
            "pack",
            "signal_logits",
        ),
        "scoring": (
            "attention_readout",
            "attention_scores",
            "document_mass",
            "forward_blocks",
        ),
    },
    "blockrank.serve": {
        "service": ("create_app",),
        "background": ("BackgroundServer",),
        "allocator": (
            "SERVICE_ARENAS",
            "cap_malloc_arenas",
        ),
    },
}


def surface(package: str, names: Mapping[str, Iterable[str]] | None = None) -> tuple[Callable[[str], Any], list[str]]:
    """A package's ``__getattr__`` and ``__all__`` for ``names`` (submodule -> the names it gives; default its entry
    in :data:`SURFACES`), each imported when first used, so importing the package stays cheap."""
    home = {name: module for module, given in (names or SURFACES[package]).items() for name in given}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home[name]}"), name)

    return __getattr__, sorted(home)


MOVED = {
    "blockrank.attention": "blockrank.kernel.attention",
    "blockrank.grouped": "blockrank.kernel.grouped",
    "blockrank.scoring": "blockrank.kernel.scoring",
    "blockrank.compiled": "blockrank.kernel.compiled",
    "blockrank.service": "blockrank.serve.service",
    "blockrank.api_schemas": "blockrank.serve.schemas",
    "blockrank.worker": "blockrank.serve.worker",
    "blockrank.allocator": "blockrank.serve.allocator",
    "blockrank.background": "blockrank.serve.background",
    "blockrank.data": "blockrank.eval.data",
    "blockrank.teachers": "blockrank.eval.encoders",
    "blockrank.retrieval": "blockrank.eval.retrieval",
    "blockrank.baselines": "blockrank.eval.baselines",
    "blockrank.evaluation": "blockrank.eval.evaluation",
    "blockrank.benchmark": "blockrank.eval.benchmark",
    "blockrank.rerank_run": "blockrank.eval.rerank_run",
    "blockrank.report": "blockrank.eval.machine",
    "blockrank.losses": "blockrank.train.losses",
    "blockrank.examples": "blockrank.train.examples",
    "blockrank.sources": "blockrank.train.sources",
    "blockrank.synth": "blockrank.train.synth",
    "blockrank.teacher_scores": "blockrank.train.teacher_scores",
    "blockrank.training": "blockrank.train.training",
    "blockrank.export": "blockrank.train.export",
    "blockrank.averaging": "blockrank.train.averaging",
    "blockrank.calibration_lists": "blockrank.train.calibration_lists",
}


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old name goes in 0.8", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)  # the module itself, so the names, state and patches are shared

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its new name


if not any(isinstance(f, _OldNames) for f in sys.meta_path):
    sys.meta_path.append(_OldNames())
