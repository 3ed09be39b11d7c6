"""Fine-tuning with ``L = w_lm * L_lm + lambda * L_aux + w_kd * L_kd`` through the block-sparse path.

``lm_weight: 0`` is aux-only training: the forward stops at layer l*, the LM head never runs, and LoRA
adapts only layers 0..l*. ``teacher`` names a scorer from :mod:`blockrank.eval.encoders` whose listwise
ranking is distilled (``kd_weight``); it also lets unlabelled candidate lists train.

Built on accelerate, so ``accelerate launch -m blockrank.cli train CONFIG`` runs the same code with
DDP/FSDP on several GPUs. Full fine-tuning or LoRA (peft), AdamW, warm-up + cosine schedule,
gradient accumulation, optional gradient checkpointing and bf16. Checkpoints are written atomically
(temp dir + rename) every ``save_every`` steps and on Ctrl-C; ``resume=True`` continues from the
latest one with the same example order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
import typing
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from blockrank.defaults import BLOCK_TOKENS, MODES, Mode
from blockrank.errors import ConfigError, warn_deprecated
from blockrank.files import atomic_directory, write_text_atomic
from blockrank.kernel.attention import LayerProbe, pack
from blockrank.kernel.scoring import attention_scores, forward_blocks
from blockrank.model import BASE_MODEL, cpu_has_native_bf16, default_layer, default_reranker_path, load_model
from blockrank.prompt import PromptBuilder
from blockrank.train.examples import ICRExample, read_qids
from blockrank.train.export import trained_settings
from blockrank.train.losses import MASS_LOGITS, LossWeights, MassLogits, blockrank_loss
from blockrank.train.sources import Source, build_examples, label_sources, parse_sources


@dataclass(frozen=True)
class LoraSettings:
    """The LoRA adapter a recipe trains (``lora: {r, alpha, dropout}`` in YAML; ``lora: null`` for full fine-tuning)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    """One training recipe (YAML/TOML file plus ``key=value`` overrides)."""

    model: str = BASE_MODEL  # the base to fine-tune
    out_dir: str = "runs/blockrank"
    data: list[Source] = field(default_factory=list)  # see blockrank.train.sources
    holdout: str | None = None  # a file of query ids left out of every source: the dev queries
    dev: dict[str, Any] | None = None  # {lists: [candidate JSONL, ...], qrels, top_k}: ranked every eval_every steps
    teacher_scores: str | None = None  # the stored teacher scores' directory (default: OUT_DIR/teacher-scores)
    n_docs: int | list[int] = 20  # documents per example, or a [low, high] range drawn per example
    block_tokens: int = BLOCK_TOKENS
    max_positives: int = 3
    epochs: int = 1
    max_steps: int | None = None  # optimizer steps; default: all examples once per epoch
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    grad_accum: int = 4
    lm_weight: float = 1.0  # 0: aux-only, the forward stops at l*
    aux_weight: float = 0.1
    temperature: float = 0.05
    mass_logits: MassLogits = "linear"  # the student's document logits: mass / temperature, or log(mass) / temperature
    teacher: str | None = None  # e.g. "bm25+minilm" (see blockrank.eval.encoders)
    kd_weight: float = 0.0
    teacher_temperature: float = 1.0
    teacher_max_tokens: int | None = 128  # embedding teachers read this much of each document (bf16 if bf16)
    threads: int | None = None  # torch CPU threads (default: torch's choice)
    layer: int | None = None
    attention: Mode = "sparse"  # "causal" trains with full attention (ablation)
    lora: LoraSettings | None = field(default_factory=LoraSettings)
    init_adapter: str | None = None  # a LoRA adapter to continue training ("default": the shipped one)
    gradient_checkpointing: bool = False
    bf16: bool = False
    seed: int = 0
    log_every: int = 10
    eval_every: int = 100
    save_every: int = 50
    keep_checkpoints: int = 2

    def holdout_qids(self) -> set[str]:
        return read_qids(self.holdout) if self.holdout else set()

    def scores_dir(self) -> Path:
        return Path(self.teacher_scores or Path(self.out_dir) / "teacher-scores")


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML or TOML recipe and apply ``key=value`` overrides (``lora.r=8``; values parsed as YAML)."""
    import yaml

    raw: dict[str, Any] = {}
    if path:
        text = Path(path).read_text()
        if str(path).endswith(".toml"):
            import tomllib

            raw = tomllib.loads(text)
        else:
            raw = yaml.safe_load(text) or {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        target = raw
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(target.get(p), dict):
                target[p] = {}
            target = target[p]
        target[leaf] = yaml.safe_load(value)
    if "max_doc_tokens" in raw:  # the 0.6 spelling
        warn_deprecated(f"the key max_doc_tokens ({path or 'overrides'})", "block_tokens", "0.7")
        raw.setdefault("block_tokens", raw.pop("max_doc_tokens"))
    _refuse_unknown(raw, TrainConfig, "config key")
    _refuse_unlisted(raw, "attention", MODES)
    _refuse_unlisted(raw, "mass_logits", MASS_LOGITS)
    if not isinstance(raw.get("data") or [], list):
        raise ConfigError(f"data: expected a list of sources, got {raw['data']!r}")
    raw["data"] = parse_sources(raw.get("data") or [])
    if isinstance(raw.get("lora"), dict):
        _refuse_unknown(raw["lora"], LoraSettings, "lora key")
        lora = _numbers(raw["lora"], LoraSettings, "lora.")
        if "target_modules" in lora:
            lora["target_modules"] = tuple(lora["target_modules"])
        raw["lora"] = LoraSettings(**lora)
    elif raw.get("lora") is not None:
        raise ConfigError(f"lora: expected {{r, alpha, dropout}} or null, got {raw['lora']!r}")
    return TrainConfig(**_numbers(raw, TrainConfig))


def _refuse_unknown(raw: dict[str, Any], cls: type, what: str) -> None:
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"unknown {what}s: {', '.join(unknown)}")


def _refuse_unlisted(raw: dict[str, Any], key: str, choices: Sequence[str]) -> None:
    if key in raw and raw[key] not in choices:
        raise ConfigError(f"{key}: {raw[key]!r} is not one of {', '.join(choices)}")


def _numbers(raw: dict[str, Any], cls: type, prefix: str = "") -> dict[str, Any]:
    """``raw`` with strings turned into the numbers ``cls``'s float fields want (YAML reads 1e-3, no dot, as a string)."""
    hints = typing.get_type_hints(cls)
    out = dict(raw)
    for name, value in raw.items():
        if isinstance(value, str) and float in (typing.get_args(hints[name]) or (hints[name],)):
            try:
                out[name] = float(value)
            except ValueError:
                raise ConfigError(f"{prefix}{name}: expected a number, got {value!r}") from None
    return out


def make_accelerator(cfg: TrainConfig):
    """An Accelerator with this recipe's precision; warns once if bf16 would be emulated on this CPU."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()  # accelerate keeps its precision in a process-wide singleton; each run sets its own
    if cfg.bf16 and not torch.cuda.is_available() and not cpu_has_native_bf16():
        warnings.warn(
            "bf16 is emulated on this CPU (no AVX512-BF16 or AMX) and runs several times slower than "
            "fp32: pass bf16=false here (measured on an AVX2-only EPYC: ~6x slower scoring)",
            stacklevel=3,
        )
    return Accelerator(mixed_precision="bf16" if cfg.bf16 else "no", gradient_accumulation_steps=cfg.grad_accum)


def trainable_model(cfg: TrainConfig, device: torch.device):
    """The base model with what the recipe trains: a LoRA adapter (optionally continuing ``init_adapter``) or,
    with ``lora: null``, every weight (aux-only: only layers 0..l*, the ones that run). Returns
    ``(model, tokenizer, layer)``."""
    model, tokenizer, _ = load_model(cfg.model, dtype=torch.float32, device=device)
    layer = default_layer(model.config) if cfg.layer is None else cfg.layer
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.lora is not None:
        from peft import LoraConfig, get_peft_model

        lora = cfg.lora
        # aux-only: layers above l* never run, so adapters there would stay untrained
        layers = list(range(layer + 1)) if not cfg.lm_weight else None
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=list(lora.target_modules),
                layers_to_transform=layers,
                task_type="CAUSAL_LM",
            ),
        )
        model.peft_config["default"].base_model_name_or_path = cfg.model  # the name, not this machine's cache path
        if cfg.init_adapter:
            load_adapter_weights(model, cfg.init_adapter)
    elif cfg.init_adapter:
        raise ConfigError("init_adapter continues a LoRA adapter: set lora too")
    elif not cfg.lm_weight:
        model.requires_grad_(False)
        for block in model.get_decoder().layers[: layer + 1]:
            block.requires_grad_(True)
    return model, tokenizer, layer


def optimizer_and_schedule(model, cfg: TrainConfig, total_steps: int):
    """AdamW over the trainable weights, with a cosine schedule after ``warmup_ratio`` of the steps."""
    from transformers import get_cosine_schedule_with_warmup

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
    return optimizer, get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        if cfg.kd_weight and not cfg.teacher and not any(src.teacher for src in cfg.data):
            raise ConfigError("kd_weight > 0 needs a teacher (e.g. teacher=bm25+minilm)")
        self.cfg, self.out = cfg, Path(cfg.out_dir)
        self.accelerator = make_accelerator(cfg)
        torch.manual_seed(cfg.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.weights = LossWeights(
            cfg.lm_weight, cfg.aux_weight, cfg.kd_weight, cfg.temperature, cfg.teacher_temperature, cfg.mass_logits
        )
        model, self.tokenizer, self.layer = trainable_model(cfg, self.accelerator.device)
        self.builder = PromptBuilder(self.tokenizer, block_tokens=cfg.block_tokens)
        store_teacher_scores(cfg)
        self.examples = examples_of(cfg)
        self.dev = dev_sets(cfg)
        self.total_steps = cfg.max_steps or math.ceil(len(self.examples) / cfg.grad_accum) * cfg.epochs
        optimizer, scheduler = optimizer_and_schedule(model, cfg, self.total_steps)
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self.step = 0
        if resume:
            self._resume()

    # -- one example -------------------------------------------------------------------------
    def loss(self, ex: ICRExample):
        blocks = self.builder.build(ex.query, ex.documents)
        aux_only = not self.cfg.lm_weight
        if not aux_only:
            blocks.answer = self.builder.answer(sorted(ex.positives))
        input_ids, layout = pack(blocks, mode=self.cfg.attention)
        probe = LayerProbe(self.layer, stop=aux_only)
        out = forward_blocks(self.model, input_ids, layout, probe, logits_to_keep=len(blocks.answer) + 1)
        logits, answer = (None, None) if aux_only else (out.logits[0], torch.tensor(blocks.answer, device=out.logits.device))
        return blockrank_loss(
            logits, answer, probe.logits, layout.doc_of_token, layout.num_docs, ex.positives, self.weights, ex.teacher
        )

    def optimizer_step(self, examples: list[ICRExample]) -> list:
        """One optimizer step, accumulating gradients over ``examples`` (``grad_accum`` of them)."""
        acc, parts = self.accelerator, []
        for ex in examples:
            with acc.accumulate(self.model):
                p = self.loss(ex)
                acc.backward(p.loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad()
            parts.append(p)
        self.step += 1
        return parts

    # -- loop --------------------------------------------------------------------------------
    def train(self) -> Path:
        cfg, acc = self.cfg, self.accelerator
        self.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.out / "config.json", json.dumps(self._run_config(), indent=1))
        log = (self.out / "log.jsonl").open("a")
        stream = self._example_stream()
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step", disable=not acc.is_main_process)
        window: list[tuple[float, float, float, bool]] = []  # (lm, aux, kd, top-1 right) per example
        started = time.perf_counter()
        try:
            if self.dev and self.step == 0 and not _logged_rows(self.out / "log.jsonl"):  # where the curve starts
                log.write(json.dumps({"step": 0, "examples": 0, "elapsed_s": 0.0} | self.evaluate()) + "\n")
                log.flush()
            self.model.train()
            while self.step < self.total_steps:
                window += [
                    (float(p.lm), float(p.aux), float(p.kd), p.top1)
                    for p in self.optimizer_step([next(stream) for _ in range(cfg.grad_accum)])
                ]
                bar.update(1)
                last = self.step == self.total_steps
                due_dev = bool(self.dev) and (self.step % cfg.eval_every == 0 or last)
                if self.step % cfg.log_every == 0 or last or due_dev:  # a dev step is logged even between log steps
                    row = {
                        "step": self.step,
                        "lm_loss": _mean(w[0] for w in window),
                        "aux_loss": _mean(w[1] for w in window),
                        "kd_loss": _mean(w[2] for w in window),
                        "attn_top1": _mean(w[3] for w in window),
                        "examples": self.step * cfg.grad_accum,
                        "lr": self.scheduler.get_last_lr()[0],
                        "elapsed_s": time.perf_counter() - started,
                    }
                    window.clear()
                    if due_dev:
                        row |= self.evaluate()
                    bar.set_postfix(
                        {
                            k: round(v, 3)
                            for k, v in row.items()
                            if k in ("lm_loss", "aux_loss", "kd_loss", "attn_top1", "dev_score")
                        }
                    )
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                if self.step % cfg.save_every == 0:
                    self.save_checkpoint()
        except KeyboardInterrupt:
            bar.write(f"interrupted: saving a checkpoint at step {self.step}")
            self.save_checkpoint()
            raise
        finally:
            bar.close()
            log.close()
        self.save_checkpoint()
        return self.save_final()

    def _example_stream(self):
        """Examples in a fixed order; a resumed run skips the ones already used."""
        used = self.step * self.cfg.grad_accum
        i = used
        while True:
            yield self.examples[i % len(self.examples)]
            i += 1

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Attention-mode ranking of the whole dev lists: plain and condensed nDCG@10 per list file, and
        their mean, ``dev_score``."""
        from blockrank.eval.evaluation import dev_metrics

        self.model.eval()
        model = self.accelerator.unwrap_model(self.model)

        def score(query, documents):
            with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
                blocks = self.builder.build(query, documents)
                # layer-major, as in training: the document-major pass does not mix autocast's dtypes
                return attention_scores(model, blocks, self.layer, mode=self.cfg.attention, grouped=False).float().tolist()

        result = dev_metrics(score, self.dev)
        self.model.train()
        return result

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self) -> Path | None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if not acc.is_main_process:
            return None
        target = self.out / f"checkpoint-{self.step}"
        with atomic_directory(target) as tmp:
            acc.unwrap_model(self.model).save_pretrained(tmp, **self._save_kwargs())
            torch.save(
                {
                    "step": self.step,
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                },
                tmp / "trainer_state.pt",
            )
        write_text_atomic(self.out / "latest", target.name)
        for old in sorted(self.out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def _save_kwargs(self) -> dict:
        # LoRA never adapts the embeddings; without this, peft looks the base up on the hub at every save
        return {"save_embedding_layers": False} if self.cfg.lora is not None else {}

    def _resume(self) -> None:
        for stale in [*self.out.glob(".checkpoint-*"), *self.out.glob(".final-*")]:  # a save cut short by a kill
            shutil.rmtree(stale, ignore_errors=True)
        pointer = self.out / "latest"
        if pointer.exists():
            self._load_checkpoint(self.out / pointer.read_text().strip())
        log = self.out / "log.jsonl"
        if log.exists():  # rows logged after the checkpoint (or, killed before the first one, any) come again
            rows = [r for r in log.read_text().splitlines() if _logged_step(r) <= self.step]
            write_text_atomic(log, "".join(r + "\n" for r in rows))

    def _load_checkpoint(self, ckpt: Path) -> None:
        state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
        model = self.accelerator.unwrap_model(self.model)
        if self.cfg.lora is not None:
            load_adapter_weights(model, str(ckpt), what="checkpoint")
        else:
            from safetensors.torch import load_file

            model.load_state_dict(load_file(ckpt / "model.safetensors"), strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        self.step = state["step"]

    def save_final(self) -> Path:
        """The trained weights (LoRA adapter, or the full model) in bf16 safetensors, with the tokenizer."""
        target = self.out / "final"
        model = self.accelerator.unwrap_model(self.model)
        with atomic_directory(target) as tmp:
            model.save_pretrained(
                tmp, state_dict={k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}, **self._save_kwargs()
            )
            self.tokenizer.save_pretrained(tmp)
            trained_settings(self._run_config(), self.step).save(tmp)
        return target

    def _run_config(self) -> dict[str, Any]:
        """The recipe as run (``config.json``), with l* resolved when the recipe left it to the model."""
        return dataclasses.asdict(self.cfg) | {"data": [src.as_dict() for src in self.cfg.data], "layer": self.layer}


def store_teacher_scores(cfg: TrainConfig) -> dict[str, int]:
    """Compute the recipe's missing stored teacher scores (resumable); the queries newly scored per file."""
    return label_sources(
        cfg.data,
        cfg.teacher,
        cfg.scores_dir(),
        cfg.seed,
        cfg.holdout_qids(),
        torch.bfloat16 if cfg.bf16 else None,
        cfg.teacher_max_tokens,
    )


def examples_of(cfg: TrainConfig) -> list[ICRExample]:
    """The recipe's training examples with their stored teacher scores (see :func:`label`)."""
    if any(src.unlabelled and not src.teacher for src in cfg.data) and not cfg.teacher:
        raise ConfigError("unlabelled data sources (candidates without qrels) need a teacher")
    examples = build_examples(
        cfg.data,
        cfg.n_docs,
        cfg.seed,
        cfg.max_positives,
        teacher=cfg.teacher,
        scores_dir=cfg.scores_dir(),
        holdout=cfg.holdout_qids(),
    )
    if not examples:
        raise ConfigError("no training examples: check the data sources")
    return examples


def dev_sets(cfg: TrainConfig) -> list:
    """The dev lists (each candidate file, restricted to the holdout queries) that :meth:`Trainer.evaluate` ranks."""
    if not cfg.dev:
        return []
    from blockrank.eval.evaluation import load_eval_set

    try:
        lists, qrels = cfg.dev["lists"], cfg.dev["qrels"]
    except (KeyError, TypeError):
        raise ConfigError("dev: expected {lists: [candidate JSONL, ...], qrels: FILE, top_k: N}") from None
    qids_file = cfg.dev.get("qids") or cfg.holdout
    if not qids_file:
        raise ConfigError("dev: name its queries (holdout, or dev.qids), so that training leaves them out")
    qids = read_qids(qids_file)
    return [load_eval_set(path, qrels, top_k=cfg.dev.get("top_k", 100), qids=qids) for path in lists]


ADAPTER_SHAPE = ("r", "lora_alpha", "layers_to_transform", "target_modules")  # what two adapters must share


def adapter_shape_difference(first: dict, second: dict, keys=ADAPTER_SHAPE) -> tuple[str, Any, Any] | None:
    """The first of ``keys`` on which two adapter configs differ, with both values (lists and sets compare
    as sets: peft keeps target_modules as a set, its JSON as a list); None if they agree."""
    as_compared = lambda v: sorted(v) if isinstance(v, (list, set)) else v  # noqa: E731
    for key in keys:
        mine, theirs = as_compared(first.get(key)), as_compared(second.get(key))
        if mine != theirs:
            return key, mine, theirs
    return None


def load_adapter_weights(model, adapter: str, what: str = "init_adapter") -> None:
    """Load a saved adapter's weights (``what`` names it in errors) into a LoRA model; its rank, targets
    and layers must match."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = default_reranker_path() if adapter == "default" else Path(adapter)
    try:
        saved = json.loads((path / "adapter_config.json").read_text())
        weights = load_file(path / "adapter_model.safetensors")
    except OSError as err:
        raise ConfigError(f"{what} {adapter!r}: not a LoRA adapter directory ({err})") from None
    ours = model.peft_config["default"]
    if differs := adapter_shape_difference({k: getattr(ours, k) for k in ADAPTER_SHAPE}, saved):
        key, mine, theirs = differs
        raise ConfigError(f"{what} {adapter!r}: its {key} is {theirs}, this recipe's is {mine}")
    result = set_peft_model_state_dict(model, weights)
    if result.unexpected_keys:
        raise ConfigError(
            f"{what} {adapter!r}: {len(result.unexpected_keys)} weights fit no layer of this model "
            f"(e.g. {result.unexpected_keys[0]})"
        )


def _logged_rows(path: Path) -> bool:
    return path.is_file() and bool(path.read_text().strip())


def _logged_step(row: str) -> float:
    """The step of a log row; a torn last row (a kill mid-write) counts as never written."""
    try:
        return json.loads(row)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else float("nan")
