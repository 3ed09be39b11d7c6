"""The training wing: examples and synthetic data, teacher scores, losses, the trainer, export, calibration fitting.

Its surface for scripts (bench/, notebooks) is ``__all__``; the rest may change without notice.
"""

from blockrank._names import surface

__getattr__, __all__ = surface(
    __name__,
    {
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
)
