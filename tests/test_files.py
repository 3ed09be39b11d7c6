import os
import stat

from blockrank.files import atomic_directory, write_text_atomic


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
