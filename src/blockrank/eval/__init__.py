"""The evaluation wing: data readers, first stages and encoders, baselines, metrics, speed benchmarks, run files.

Its surface for scripts (bench/, notebooks) is ``__all__``; the rest may change without notice.
"""

from blockrank._names import surface

__getattr__, __all__ = surface(
    __name__,
    {
        "evaluation": (
            "load_eval_set",
            "evaluate",
            "CONDENSED",
        ),
        "data": (
            "read_candidates",
            "read_qrels",
            "read_run",
            "read_beir",
            "read_corpus",
            "read_jsonl",
            "Candidates",
        ),
        "baselines": ("make_scorers",),
        "machine": (
            "machine_info",
            "pyplot",
        ),
        "benchmark": (
            "matmul_gflops",
            "full_prefill",
            "rss_bytes",
            "training_gflop_per_token",
        ),
        "retrieval": ("retrieve",),
        "encoders": ("load_teacher",),
    },
)
