"""The evaluation wing: data readers, first stages and encoders, baselines, metrics, speed benchmarks, run files."""
