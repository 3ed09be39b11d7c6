"""The README's table and docs/results.md are rendered from docs/results.toml and the result files it names."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rendered_results_match_their_data():
    done = subprocess.run([sys.executable, "bench/render_results.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_results_row_names_a_committed_file_and_a_command():
    import tomllib

    data = tomllib.loads((ROOT / "docs/results.toml").read_text())
    for row in data["quality"] + data["speed"]:
        assert (ROOT / row["result"]).is_file() and row["command"].startswith("python bench/"), row
