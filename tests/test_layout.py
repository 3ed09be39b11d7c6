"""The wings' surfaces for scripts, and the module names of 0.6."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("wing", ["blockrank", "blockrank.eval", "blockrank.train", "blockrank.kernel", "blockrank.serve"])
def test_every_name_of_a_surface_resolves(wing):
    module = importlib.import_module(wing)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_old_module_names_are_the_new_modules(recwarn, monkeypatch):
    import sys

    import blockrank.kernel.scoring

    monkeypatch.delitem(sys.modules, "blockrank.scoring", raising=False)  # an earlier test may have imported it
    import blockrank.scoring  # noqa: F401  (the 0.6 name)

    assert blockrank.scoring is blockrank.kernel.scoring
    from blockrank.teachers import load_teacher  # 0.6 name of blockrank.eval.encoders

    from blockrank.eval.encoders import load_teacher as new

    assert load_teacher is new
    assert any("moved to blockrank.kernel.scoring" in str(w.message) for w in recwarn)


def test_bench_scripts_use_the_face_and_the_wings_surfaces():
    """bench/ imports the public face's modules and each wing's surface (its ``__all__``), never a wing's insides."""
    import ast
    from pathlib import Path

    allowed = {"blockrank", "blockrank.eval", "blockrank.train", "blockrank.kernel", "blockrank.serve", "blockrank.cli"}
    allowed |= {f"blockrank.{m}" for m in ("files", "calibration", "defaults", "model", "prompt", "settings", "errors")}
    for script in sorted((Path(__file__).parents[1] / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("blockrank"):
                assert node.module in allowed, f"{script.name} imports {node.module}"
