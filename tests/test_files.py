import hashlib
import os
import stat

import pytest

from blockrank.files import atomic_directory, join_parts, write_text_atomic


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_writes_get_the_usual_modes(tmp_path):
    """Temporary files are owner-only; what replaces the target must be as readable as open()/mkdir() make it."""
    write_text_atomic(tmp_path / "a.json", "{}")
    with atomic_directory(tmp_path / "ckpt") as d:
        (d / "x").write_text("1")
    mask = _umask()
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "ckpt").stat().st_mode) == 0o777 & ~mask
    assert (tmp_path / "a.json").read_text() == "{}" and (tmp_path / "ckpt" / "x").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_join_parts_streams_parts_larger_than_its_chunk(tmp_path):
    parts = []
    for i in range(2):  # 1.5 MiB each: more than one read per part
        parts.append(tmp_path / f"part{i}.bin")
        parts[-1].write_bytes(bytes([i]) * (3 << 19))
    whole = b"".join(p.read_bytes() for p in parts)
    join_parts(parts, tmp_path / "joined.bin", hashlib.sha256(whole).hexdigest(), "pip install x", ValueError)
    assert (tmp_path / "joined.bin").read_bytes() == whole
    with pytest.raises(ValueError, match="joined.bin, joined from its wheels, has sha256"):
        join_parts(parts[::-1], tmp_path / "joined.bin", hashlib.sha256(whole).hexdigest(), "pip install x", ValueError)
    assert (tmp_path / "joined.bin").read_bytes() == whole  # a failed join leaves the good file
