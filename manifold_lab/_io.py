"""Atomic file writes shared by reports and checkpoints.

A reader (or a resumed run) must never see a half-written file: data goes to a
temporary file in the destination's directory, is flushed to disk, then renamed
over the destination in one step (``os.replace`` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes"]

_FILE_MODE = 0o644


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same dir + rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; reports are meant to be shared like any output.
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        # Leave no temp file behind on any failure, KeyboardInterrupt included.
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
