"""Compiled decoder layers: the same scores as eager, no recompilation across list sizes, eager on failure."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch._dynamo
from factories import random_blocks, tiny_llama

from blockrank.kernel.compiled import CompileWarning, compile_layers, eager_on_failure, is_compiled
from blockrank.kernel.scoring import attention_scores


@pytest.mark.slow
def test_compiled_layers_score_as_eager_and_do_not_recompile_for_other_lists():
    model = tiny_llama()
    lists = [random_blocks([5, 31, 1, 12], seed=1), random_blocks([7, 7, 20, 3, 3, 9], seed=2)]
    eager = [attention_scores(model, b, 2) for b in lists]
    torch._dynamo.reset()
    compile_layers(model)
    assert is_compiled(model)
    first = attention_scores(model, lists[0], 2)
    with torch._dynamo.config.patch(error_on_recompile=True):  # dynamic shapes: a new list size reuses the graphs
        second = attention_scores(model, lists[1], 2)
    for got, want in zip([first, second], eager):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_a_failed_compilation_warns_once_and_runs_eagerly():
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler here")

    model = tiny_llama()
    blocks = random_blocks([5, 9, 3])
    eager = attention_scores(model, blocks, 2)
    torch._dynamo.reset()
    compile_layers(model, backend=broken_backend)
    with pytest.warns(CompileWarning, match="no compiler here"):
        got = eager_on_failure(model, lambda: attention_scores(model, blocks, 2))
    torch.testing.assert_close(got, eager)
    assert not is_compiled(model) and "forward" not in model.get_decoder().layers[0].__dict__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eager_on_failure(model, lambda: attention_scores(model, blocks, 2))  # eager now: no second warning


def test_errors_that_are_not_compilation_errors_propagate():
    model = tiny_llama()
    compile_layers(model, backend="eager")
    with pytest.raises(ValueError, match="mine"):
        eager_on_failure(model, lambda: (_ for _ in ()).throw(ValueError("mine")))
    assert is_compiled(model)
