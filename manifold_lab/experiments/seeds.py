"""Derived seeds and explicit generators for every random draw of a run.

Seeds are derived by hashing (``derive_seed``), never by Python's ``hash``
(randomised per process), so every worker process of a sweep rebuilds exactly
the same distribution, held-out points and training sets.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "make_generator", "INIT_SEED_MOD"]

_SEED_BITS = 63  # torch.Generator.manual_seed accepts any non-negative 64-bit int
#: Model initialisation seeds stay below 2**31 (any seed API accepts them).
INIT_SEED_MOD = 2 ** 31


def derive_seed(*parts: object) -> int:
    """A stable non-negative seed from ``parts`` (SHA-256 of their ``repr``)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _SEED_BITS)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
