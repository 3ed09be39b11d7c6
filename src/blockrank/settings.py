"""What a trained model needs to score, as one typed object: ``blockrank.json`` beside its weights.

:class:`ModelSettings` is the only reader and writer of that file. Training, ``blockrank export`` and
``blockrank average`` save one; :func:`~blockrank.model.load_model` loads it, and :class:`~blockrank.Reranker`
scores by it. The calibration (``calibration.json``, fitted later by ``blockrank calibrate``) rides along.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockrank.calibration import Calibration
from blockrank.defaults import BLOCK_TOKENS
from blockrank.errors import ConfigError, warn_deprecated
from blockrank.files import model_file, write_text_atomic
from blockrank.prompt import PROMPT_VERSION

FILENAME = "blockrank.json"
_RENAMED = {"max_doc_tokens": "block_tokens"}  # old spellings still read: the shipped adapters of 0.6 use them


@dataclass(frozen=True)
class ModelSettings:
    """The scoring contract of a trained model.

    ``layer`` is l*, whose attention scores (None: two thirds of the depth); ``block_tokens`` the block length
    it was trained on, a passage's length when a document is split; ``base_model`` what a LoRA adapter loads
    onto; ``prompt_version`` the prompt template it was trained with. ``calibration`` turns its evidence into a
    probability of relevance (None: scores are list-normalised attention mass). ``provenance`` keeps what
    training recorded (steps, a note, what was averaged) and is never used to score.
    """

    layer: int | None = None
    block_tokens: int = BLOCK_TOKENS
    base_model: str | None = None
    prompt_version: int = PROMPT_VERSION
    calibration: Calibration | None = field(default=None, compare=False)
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)
    source: str | None = field(default=None, compare=False)  # where it was loaded from; not saved

    def __post_init__(self) -> None:
        """Raise :class:`ConfigError` naming the field that is wrong."""
        if self.layer is not None and (not _is_int(self.layer) or self.layer < 0):
            raise ConfigError(f"field 'layer' must be a layer index >= 0 or null, got {self.layer!r}")
        if not _is_int(self.block_tokens) or self.block_tokens <= 0:
            raise ConfigError(f"field 'block_tokens' must be a positive integer, got {self.block_tokens!r}")
        if self.base_model is not None and not isinstance(self.base_model, str):
            raise ConfigError(f"field 'base_model' must be a model name or path, got {self.base_model!r}")
        if not _is_int(self.prompt_version) or not 1 <= self.prompt_version <= PROMPT_VERSION:
            raise ConfigError(
                f"field 'prompt_version' is {self.prompt_version!r}; this blockrank reads prompt versions "
                f"1 to {PROMPT_VERSION} (a newer model needs a newer blockrank)"
            )
        if self.calibration is not None and self.layer is not None and self.calibration.layer != self.layer:
            raise ConfigError(f"the calibration was fitted at layer {self.calibration.layer}, the model scores at {self.layer}")

    def replace(self, **changes: Any) -> ModelSettings:
        """A copy with ``changes`` (None values are ignored, so CLI options can be passed as they come)."""
        given = {k: v for k, v in changes.items() if v is not None}
        fitted_at = self.calibration.layer if self.calibration is not None else None
        if "calibration" not in given and given.get("layer", fitted_at) != fitted_at:
            given["calibration"] = None  # fitted at another layer: it means nothing at this one
        return dataclasses.replace(self, **given)

    def as_json(self) -> dict[str, Any]:
        """What ``blockrank.json`` holds: the scoring fields, then the provenance."""
        fields = {"layer": self.layer, "block_tokens": self.block_tokens, "base_model": self.base_model}
        return fields | {"prompt_version": self.prompt_version} | self.provenance

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``directory/blockrank.json`` atomically (the calibration is saved by :meth:`Calibration.save`)."""
        path = Path(directory) / FILENAME
        write_text_atomic(path, json.dumps(self.as_json()) + "\n")
        return path

    @classmethod
    def from_json(cls, data: Any, where: str, source: str | None = None) -> ModelSettings:
        """Settings from ``blockrank.json``'s content, validated; ``where`` names the file in errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
        data = {_RENAMED.get(k, k): v for k, v in data.items()}
        known = {"layer", "block_tokens", "base_model", "prompt_version"}
        try:
            return cls(
                **{k: v for k, v in data.items() if k in known and v is not None},
                source=source,
                provenance={k: v for k, v in data.items() if k not in known},
            )
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None

    @classmethod
    def load(cls, source: str | os.PathLike) -> ModelSettings:
        """The settings saved with the model at ``source`` (a directory or hub id); defaults where it has none."""
        path = model_file(str(source), FILENAME)
        if path is None:
            return cls(source=str(source))
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
        return cls.from_json(data, str(path), str(source))

    # 0.6 read these settings as a dict; keep that working for one minor version.
    def __getitem__(self, key: str) -> Any:
        warn_deprecated("LoadedModel.settings[key]", "its attributes: LoadedModel.settings is a ModelSettings", "0.7")
        return (self.as_json() | {"source": self.source})[_RENAMED.get(key, key)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
