"""SIGKILL (not Ctrl-C) at a random point, then resume: the result equals an uninterrupted run's."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from factories import icr_examples
from safetensors.torch import load_file

# The child CLI with each unit of work (one query, one optimizer step) slowed to a known minimum, so that
# a fast machine cannot finish the run before the test gets to kill it. The work itself is unchanged.
THROTTLED = """
import sys, time
from blockrank.eval import rerank_run
from blockrank.train import training
def slow(f, s):
    return lambda *a, **k: (time.sleep(s), f(*a, **k))[1]
rerank_run.rank_lines = slow(rerank_run.rank_lines, 0.03)
training.Trainer.optimizer_step = slow(training.Trainer.optimizer_step, 0.15)
from blockrank.cli import main
sys.exit(main())
"""
SEED = int(os.environ.get("BLOCKRANK_KILL_SEED", "20261201"))  # fixed, so a failure replays
RNG = random.Random(SEED)


def blockrank(*args: str, throttled: bool = False) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    entry = ["-c", THROTTLED] if throttled else ["-m", "blockrank.cli"]
    return subprocess.Popen([sys.executable, *entry, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (or fail if it ended first)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-500:]}"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]


def test_rerank_run_survives_sigkill(tmp_path, tiny_model_dir):
    cands = tmp_path / "c.jsonl"
    cands.write_text(
        "".join(
            json.dumps(
                {
                    "qid": f"q{i}",
                    "query": f"query {i}",
                    "candidates": [{"docid": f"d{j}", "text": f"document {j} about {i} " * 3} for j in range(8)],
                }
            )
            + "\n"
            for i in range(60)
        )
    )
    common = ["rerank-run", "--candidates", str(cands), "--model", str(tiny_model_dir), "--layer", "1"]
    finish(blockrank(*common, "--out", str(tmp_path / "clean.trec")))
    out = tmp_path / "killed.trec"
    at = RNG.randrange(200, 12000)  # a random byte count: often mid-line, mid-query
    print(f"kill after {at} bytes (BLOCKRANK_KILL_SEED={SEED})")
    kill_when(blockrank(*common, "--out", str(out), throttled=True), lambda: out.exists() and out.stat().st_size > at)
    assert 0 < len(out.read_text().splitlines()) < 480  # killed midway
    finish(blockrank(*common, "--out", str(out)))
    assert sorted(out.read_text().splitlines()) == sorted((tmp_path / "clean.trec").read_text().splitlines())


@pytest.fixture
def recipe(tmp_path, tiny_model_dir):
    from blockrank.train.examples import write_icr_jsonl

    data = tmp_path / "train.jsonl"
    write_icr_jsonl(data, icr_examples(12))
    return [
        "train",
        f"model={tiny_model_dir}",
        "layer=1",
        "max_steps=8",
        "grad_accum=1",
        "lora.r=4",
        "lora.dropout=0",
        "block_tokens=16",
        "save_every=1",
        "log_every=1",
        "threads=1",
        f"data=[{{type: icr, path: {data}}}]",
    ]


def test_training_survives_sigkill(tmp_path, recipe):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    finish(blockrank(*recipe, f"out_dir={clean}"))
    at = RNG.randrange(1, 6)
    kill_when(blockrank(*recipe, f"out_dir={killed}", throttled=True), lambda: (killed / f"checkpoint-{at}").exists())
    assert not (killed / "final").exists()
    finish(blockrank(*recipe, f"out_dir={killed}", "--resume"))
    a = load_file(clean / "final" / "adapter_model.safetensors")
    b = load_file(killed / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(x)["step"] for x in (killed / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))  # the log too: nothing lost, nothing twice
    assert not list(Path(killed).glob(".checkpoint-*"))  # no half-written checkpoint left behind
