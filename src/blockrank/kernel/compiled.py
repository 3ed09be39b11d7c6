"""Optional ``torch.compile`` of the decoder layers that scoring runs (issue #22).

Eager PyTorch runs a layer op by op, and on CPUs with fast matrix units (AMX) the element-wise work between
the matmuls (RMSNorm's fp32 round trip, rotary, SiLU times up, the residual adds) costs as much as the
matmuls. Inductor fuses it. Each layer's ``forward`` is compiled with dynamic shapes, so one compilation
serves every list size and every layer (they share code); the attention function stays eager (it carries
the block layout), and forward hooks such as cancellation run outside the compiled code.

The first call compiles: tens of seconds on 2 cores, less once Inductor's on-disk cache holds the kernels.
So compiling pays for a service or a batch run, not for one call. A compilation that fails warns once and
leaves the layers eager for good; scores are the same either way, up to floating-point rounding.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import torch
from transformers import PreTrainedModel

T = TypeVar("T")


class CompileWarning(UserWarning):
    """Compiling failed; the model runs eagerly."""


def compile_layers(model: PreTrainedModel, backend: str | Callable = "inductor") -> None:
    """Compile every decoder layer's ``forward`` in place (undone by :func:`uncompile_layers`)."""
    for layer in model.get_decoder().layers:
        layer.forward = torch.compile(layer.forward, dynamic=True, backend=backend)
    model._blockrank_compiled = True


def uncompile_layers(model: PreTrainedModel) -> None:
    for layer in model.get_decoder().layers:
        layer.__dict__.pop("forward", None)  # the class's eager forward shows through again
    model._blockrank_compiled = False


def is_compiled(model: PreTrainedModel) -> bool:
    return getattr(model, "_blockrank_compiled", False)


def _compile_error(e: BaseException) -> bool:
    from torch._dynamo.exc import TorchDynamoException

    errors: tuple[type[BaseException], ...] = (TorchDynamoException,)
    try:
        from torch._inductor.exc import InductorError

        errors += (InductorError,)
    except ImportError:  # older torch: Inductor's errors reach here wrapped as Dynamo's
        pass
    return isinstance(e, errors)


def eager_on_failure(model: PreTrainedModel, fn: Callable[[], T]) -> T:
    """``fn()``; if the model's compiled layers fail to compile, make them eager, warn once and run ``fn`` again."""
    try:
        return fn()
    except Exception as e:
        if not is_compiled(model) or not _compile_error(e):
            raise
        uncompile_layers(model)
        root: BaseException = e
        while (inner := getattr(root, "inner_exception", None) or root.__cause__) is not None:
            root = inner  # the backend's own error, not Dynamo's wrapper
        reason = (str(root).strip().splitlines() or [""])[0]
        warnings.warn(
            f"torch.compile failed ({type(root).__name__}: {reason}); this model runs eagerly from now on",
            CompileWarning,
            stacklevel=3,
        )
        return fn()
