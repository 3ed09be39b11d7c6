"""Old module names, kept importable for one minor version after 0.7 moved them into wings.

``import blockrank.scoring`` still works and gives ``blockrank.kernel.scoring`` itself, with one
``DeprecationWarning`` naming the new place. Removed in 0.8.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

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
