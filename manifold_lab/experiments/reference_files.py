"""A run's fitted ground truth carried to the workers by value.

Image kinds fit their autoencoder and denoiser once per run, and the driver writes
them into ``<run>/reference/`` (``kinds._fitted_images``). Local workers read that folder;
Ray workers on other machines may not see it (no shared filesystem). The driver
therefore reads the folder's files into a :class:`ReferenceFiles` (a few MB) that
travels with every job; a worker uses the original folder when it holds the same
bytes (same machine, or a shared filesystem) and otherwise writes a node-local
copy once, under the system temp folder in a directory named by the content's
digest, which every later job on that node reuses.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from manifold_lab._io import atomic_write_bytes

__all__ = ["ReferenceFiles", "LOCAL_COPY_PREFIX"]

#: Name prefix of node-local copies (``<tmp>/manifold_lab-reference-<digest>``).
LOCAL_COPY_PREFIX = "manifold_lab-reference-"


@dataclass(frozen=True)
class ReferenceFiles:
    """The plain files of one folder, by value.

    Attributes
    ----------
    origin : str
        The folder they were read from (the run's ``reference/``).
    files : tuple of (name, bytes)
        Every regular file directly in ``origin``, by name; hidden temp files of an
        interrupted write (names starting with ``.``) are left out.
    """

    origin: str
    files: tuple[tuple[str, bytes], ...]

    @classmethod
    def read(cls, folder: str | os.PathLike) -> "ReferenceFiles":
        """Read every file of ``folder`` (sorted by name)."""
        folder = Path(folder)
        entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return cls(str(folder), tuple((p.name, p.read_bytes()) for p in entries))

    @property
    def digest(self) -> str:
        """SHA-256 (16 hex digits) over names and contents."""
        h = hashlib.sha256()
        for name, data in self.files:
            h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
        return h.hexdigest()[:16]

    def _holds_them(self, folder: Path) -> bool:
        try:
            return all((folder / name).is_file() and (folder / name).stat().st_size == len(data)
                       and (folder / name).read_bytes() == data for name, data in self.files)
        except OSError:
            return False

    def folder(self, local_root: str | os.PathLike | None = None) -> str:
        """A folder on this machine that holds these files: ``origin`` when it does,
        else ``<local_root or tempfile.gettempdir()>/manifold_lab-reference-<digest>``,
        written (each file atomically) if it is not complete yet."""
        origin = Path(self.origin)
        if self._holds_them(origin):
            return str(origin)
        local = Path(local_root if local_root is not None else tempfile.gettempdir()) / (
            LOCAL_COPY_PREFIX + self.digest)
        if not self._holds_them(local):
            local.mkdir(parents=True, exist_ok=True)
            for name, data in self.files:
                atomic_write_bytes(local / name, data)
        return str(local)
