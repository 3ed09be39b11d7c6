"""Files that survive a crash: atomic replacement of files and directories, synced appends, the model cache.

Everything BlockRank writes for later (checkpoints, caches, stored teacher scores, run files) goes through these,
so a kill leaves the old version or the new one, or a resumable prefix, never a torn file.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# mkstemp/mkdtemp create owner-only files; what we write should get the modes open() and mkdir() would give.
# Read once at import: os.umask can only be read by setting it, which is not thread-safe later on.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE, DIR_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


def cache_dir() -> Path:
    """Where converted models live: ``$BLOCKRANK_CACHE`` or ``~/.cache/blockrank``."""
    return Path(os.environ.get("BLOCKRANK_CACHE") or Path.home() / ".cache" / "blockrank")


def wheel_parts(packages: Sequence[str], version: str, marker: str, install: str, error: type[Exception]) -> list[Path]:
    """The parts of a file too big for one wheel, in order: in each installed package of ``packages`` (at
    ``version``), its one file whose name contains ``marker``. A missing or wrong package raises ``error``
    naming ``install``, the command that fixes it."""
    parts = []
    for name in packages:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise error(f"{name} is not installed; install the model's wheels: {install}") from None
        if dist.version != version:
            raise error(f"{name} is version {dist.version}, not {version}: {install}")
        found = [f for f in dist.files or [] if marker in f.name]
        if len(found) != 1:
            raise error(f"{name} holds no model part; reinstall it: {install}")
        parts.append(Path(str(dist.locate_file(found[0]))))
    return parts


def join_parts(parts: Sequence[Path], out: Path, sha256: str, install: str, error: type[Exception]) -> None:
    """Write ``parts`` one after another to ``out``, atomically; raise ``error``, writing nothing, if the whole
    does not hash to ``sha256``."""
    digest = hashlib.sha256()
    with atomic_file(out, "wb") as f:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(1 << 20):  # streamed: the parts are ~80 MB each
                    digest.update(chunk)
                    f.write(chunk)
        if (found := digest.hexdigest()) != sha256:
            raise error(f"{out.name}, joined from its wheels, has sha256 {found}, not {sha256}; reinstall: {install}")


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """An open temporary file beside ``path`` (``.NAME-*``) that replaces ``path``, synced, when the block ends.
    An exception leaves the old ``path`` untouched and the temporary gone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` all at once: a crash leaves the old file or the new one, never half."""
    with atomic_file(path) as f:
        f.write(text)


@contextmanager
def atomic_directory(target: str | os.PathLike, keep_existing: bool = False) -> Iterator[Path]:
    """A temporary directory beside ``target`` (``.NAME-*``) that becomes ``target`` when the block ends.

    An exception leaves the old ``target`` untouched; a kill leaves only the dot-named temporary, which
    resuming code may delete. ``keep_existing``: if ``target`` appeared meanwhile (another process), keep it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(DIR_MODE)
        if target.exists() and not keep_existing:
            shutil.rmtree(target)
        if not target.exists():
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def append_synced(f, text: str) -> None:
    """Append ``text`` to an open file and force it to disk (resumable outputs rely on it)."""
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


def model_file(source: str, filename: str) -> Path | None:
    """``filename`` of a local model directory or of a hub repo (the hub cache, downloading if online); None if absent."""
    if Path(source).is_dir():
        path = Path(source) / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    try:
        return Path(hf_hub_download(source, filename))
    except (EntryNotFoundError, HfHubHTTPError):  # no such file, or the repo itself is unreachable: AutoConfig says which
        return None
