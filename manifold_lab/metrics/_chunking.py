"""How many rows each forward call of a perturbation sweep takes: fixed, or tuned from measured throughput.

A fixed element budget is the wrong knob: on a CPU a small CNN runs fastest per
example at a few dozen to a few hundred rows per call (activations stay in
cache) while a tiny MLP wants thousands (per-call overhead), and on a GPU larger
is better until memory runs out. So by default the sweep *measures*: its own
calls (real work, nothing is spent on probing) start at ``MIN_TUNED_ROWS`` rows
and double while the time per row falls by at least ``1 − GAIN``, each size timed
``TRIALS`` times (the minimum counts, so a first call's one-off setup or a burst
of load from other processes does not decide); then the fastest size is kept
for the rest of the sweep. The memory bound
(``DEFAULT_CHUNK_ELEMENTS`` input numbers per call) caps the search.

Results do not depend on the sizes chosen, to the last bit: every row's output
is computed from that row alone, the draws do not depend on the chunking (see
``_sweep``), and the tuned calls only *split* the calls of the fixed plan (one
call per ``DEFAULT_CHUNK_ELEMENTS // D`` rows) at multiples of ``ALIGN_ROWS`` rows
from its start. That matters because CPU matrix kernels compute rows in blocks
of 8 (float64) or 16 (float32) and the last, partial block with a different
kernel whose float rounding differs in the last bit (measured here for MLPs and
CNNs: splits at multiples of 16 rows give identical outputs, splits at 70 or
133 rows do not); so the synthetic presets' numbers stay exactly those of the
fixed plan. A ``chunk_size`` argument gives the fixed plan with that size.
"""

from __future__ import annotations

import math
import time

import torch

__all__ = ["DEFAULT_CHUNK_ELEMENTS", "MIN_TUNED_ROWS", "ALIGN_ROWS", "GAIN", "default_chunk_size", "ChunkPlan"]

#: Memory bound on the input numbers of one forward call (2**20 ≈ 1M: 4 MB of
#: float32 inputs; activations scale with it). The tuner never exceeds it.
DEFAULT_CHUNK_ELEMENTS = 2**20
#: Rows of the first tuned call.
MIN_TUNED_ROWS = 32
#: Tuned calls split the fixed plan's calls at multiples of this many rows (see above).
ALIGN_ROWS = 16
#: A doubled call size is kept only if its time per row is below ``GAIN ×`` the best so far.
GAIN = 0.95
#: Calls timed per candidate size (the minimum is compared).
TRIALS = 2


def default_chunk_size(ambient_dim: int) -> int:
    """Rows per forward call such that one call holds ``DEFAULT_CHUNK_ELEMENTS`` input numbers (the cap)."""
    return max(1, DEFAULT_CHUNK_ELEMENTS // max(1, ambient_dim))


class ChunkPlan:
    """Groups (rows of ``S`` scales each) per forward call, fixed or tuned from timings.

    The caller walks the fixed plan — calls of ``max_groups`` groups — and asks
    :meth:`next_groups` how much of the current one to take next; a fixed plan
    takes it whole, a tuned plan takes ``self.groups`` (a multiple of ``unit``
    groups, i.e. of ``ALIGN_ROWS`` rows) and the rest last.

    Parameters
    ----------
    scales : int
        ``S``, rows per group.
    max_groups : int
        Memory cap (groups per call).
    tuned : bool
        Measure (see the module docstring) instead of always taking the whole call.
    device : torch.device
        Synchronised before reading the clock when it is a CUDA device.
    """

    def __init__(self, scales: int, max_groups: int, *, tuned: bool, device: torch.device) -> None:
        self.max_groups = max(1, int(max_groups))
        self.unit = ALIGN_ROWS // math.gcd(ALIGN_ROWS, scales)  # groups per ALIGN_ROWS-multiple of rows
        start = self.unit * math.ceil(math.ceil(MIN_TUNED_ROWS / scales) / self.unit)
        self.tuning = tuned and start < self.max_groups
        self.groups = start if self.tuning else self.max_groups
        self._best = (math.inf, self.groups)
        self._trials: list[float] = []
        self._cuda = torch.device(device).type == "cuda"
        self._t0 = 0.0
        #: Groups of every call, in order (for benchmarks and tests).
        self.history: list[int] = []

    def next_groups(self, remaining: int) -> int:
        """Groups for the next call when ``remaining`` are left in the current fixed-plan call."""
        g = min(self.groups, remaining)
        self.history.append(g)
        if self.tuning:
            if self._cuda:
                torch.cuda.synchronize()
            self._t0 = time.perf_counter()
        return g

    def done(self, groups: int) -> None:
        """Record the call just made (``groups`` from :meth:`next_groups`)."""
        if not self.tuning or groups != self.groups:
            return  # remainders are not a fair measurement of the size under test
        if self._cuda:
            torch.cuda.synchronize()
        self._trials.append((time.perf_counter() - self._t0) / groups)
        if len(self._trials) < TRIALS:
            return
        per_group, self._trials = min(self._trials), []
        if per_group < GAIN * self._best[0]:
            self._best = (per_group, groups)
            if groups < self.max_groups:
                self.groups = min(self.max_groups, 2 * groups)
                return
        self.groups, self.tuning = self._best[1], False
