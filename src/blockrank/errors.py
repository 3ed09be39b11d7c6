"""BlockRank's exceptions and warnings. Everything BlockRank raises about a caller's input, configuration or
environment derives from :class:`BlockRankError`, so a caller (the CLI, the service) can tell a bad input, reported
in one line, from a bug, which should surface with its traceback. A warning is given once per process
(:func:`warn_once`): a library warns once, not on every call."""

from __future__ import annotations

import warnings

_warned: set[str] = set()


def warn_once(message: str, category: type[Warning], stacklevel: int = 2) -> None:
    """``warnings.warn(message, category, stacklevel)`` the first time this process sees ``message``."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, category, stacklevel=stacklevel + 1)


def warn_deprecated(name: str, instead: str, since: str, stacklevel: int = 2) -> None:
    """Warn once that ``name`` is deprecated since ``since`` and goes in 0.8, and what to use ``instead``."""
    warn_once(f"{name} is deprecated since {since} and goes in 0.8; use {instead}", DeprecationWarning, stacklevel + 1)


class BlockRankError(Exception):
    """Base of BlockRank's errors about inputs, configuration and environment."""


class InputError(BlockRankError, ValueError):
    """An argument or input BlockRank cannot use; the message names it."""


class DocumentTypeError(InputError, TypeError):
    """A document (or pair) is not of a type BlockRank takes; ``index`` is its position, if one is to blame."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


class ConfigError(InputError):
    """A training recipe, override or option is invalid."""


class DataFormatError(InputError):
    """A data file is missing or malformed."""


class QueryTooLongError(InputError):
    """The query exceeds ``max_query_tokens`` (it appears twice in the prompt and every document reads it)."""


class PromptTooLongError(InputError):
    """The whole prompt exceeds ``max_prompt_tokens``."""


class DocumentTooLongError(InputError):
    """A document exceeds the token budget and truncation is off."""


class ModelLoadError(BlockRankError, RuntimeError):
    """The model could not be found or loaded."""


class UnsupportedModelError(BlockRankError, ValueError):
    """The model's architecture has no BlockRank support."""


class TeacherError(BlockRankError, RuntimeError):
    """A teacher's model is missing or damaged."""


class CalibrationError(BlockRankError, ValueError):
    """A calibration is missing, unreadable or fitted for another model; the raw scores stay usable."""


class ServiceBusy(BlockRankError, RuntimeError):
    """The service's queue is full (HTTP 503 with Retry-After)."""


class ServiceTimeout(BlockRankError, TimeoutError):
    """A request ran past the service's time limit; its work was cancelled (HTTP 504)."""
