"""The shared engine behind Definition 1 and the paper's directional variant.

For every point ``x_i`` it draws Gaussian vectors ``u ~ N(0, I_D)``, splits each
once into tangent and normal parts (``u_T = B Bᵀu`` by batched matmul,
``u_N = u − u_T``), optionally normalises them, and evaluates the model at
``x_i + s·v`` for every scale ``s`` with the *same* vectors (common random
numbers: the estimates at different scales share their noise, so curves over
σ are smooth and their ratios precise).

Evaluation order and memory: the (direction, point, draw) triples are called
*groups*; a forward call takes whole groups × all scales, i.e. at most
``chunk_size`` rows rounded to a multiple of ``len(scales)`` — by default the
size is tuned from the measured throughput of the sweep's own calls, under the
memory cap ``DEFAULT_CHUNK_ELEMENTS // D`` rows (:mod:`._chunking`). Points are
processed in blocks so that one block's draws fill about one call of the cap;
the noise of a block (``2·b·M·D`` numbers) is no larger than one call's inputs,
except that a block holds at least one point (``2·M·D`` numbers for ``M``
draws). Draws are generated point by point, so the numbers do not depend on
the chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from manifold_lab.metrics._checks import working_dtype
from manifold_lab.metrics._chunking import DEFAULT_CHUNK_ELEMENTS, ChunkPlan, default_chunk_size
from manifold_lab.metrics.gradients import call_scalar

__all__ = ["DEFAULT_CHUNK_ELEMENTS", "perturbation_sweep", "summarise", "RobustnessResult"]


def perturbation_sweep(
    fn: Callable,
    x: torch.Tensor,
    flat: torch.Tensor,
    basis: torch.Tensor,
    scales: torch.Tensor,
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    n_draws: int,
    generator: torch.Generator | None,
    chunk_size: int | None,
    unit: bool,
    antithetic: bool = False,
    probe: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Distances between outputs at ``x + s·v`` and at ``x`` for tangent and normal ``v``.

    Parameters
    ----------
    fn : callable
        ``fn(inputs [m, *x.shape[1:]]) -> outputs [m, ...]`` (``takes_index``
        convention of :mod:`.gradients`).
    x : Tensor, shape [n, ...]
    flat : Tensor, shape [n, D]
        ``x`` flattened.
    basis : Tensor, shape [n, D, k] or [D, k]
        Checked orthonormal basis, in ``x``'s dtype and device.
    scales : Tensor, shape [S]
    distance : callable
        ``distance(out_pert [m, ...], out_clean [m, ...]) -> [m]``.
    n_draws : int
        ``M`` draws per point (even if ``antithetic``).
    chunk_size : int or None
        Rows per forward call (fixed); None tunes it from measured throughput
        under the memory cap (:class:`._chunking.ChunkPlan`).
    unit : bool
        Normalise the tangent and normal parts to unit length (paper variant)
        instead of keeping the projected Gaussian (Definition 1).
    antithetic : bool
        Use the draws ``u_1..u_{M/2}, −u_1..−u_{M/2}``.
    probe : Tensor, shape [n, D], optional
        Also return ``⟨probe_i, v⟩`` for every direction (e.g. ``gᵀu_T``).

    Returns
    -------
    values : Tensor, shape [2, n, M, S]
        ``values[0]`` tangent, ``values[1]`` normal distances.
    lin : Tensor, shape [2, n, M] or None
    """
    n, D = flat.shape
    S = scales.shape[0]
    M = n_draws
    dtype, device = flat.dtype, flat.device
    if n == 0:  # no points: nothing to call the model on, and no draws taken
        return (torch.empty(2, 0, M, S, dtype=working_dtype(flat), device=device),
                None if probe is None else torch.empty(2, 0, M, dtype=dtype, device=device))
    shared = basis.ndim == 2
    tuned = chunk_size is None
    if tuned:
        chunk_size = default_chunk_size(D)
    group_rows = max(1, chunk_size // S)  # groups per forward call (the cap when tuned)
    block = max(1, group_rows // (2 * M))  # points per block
    plan = ChunkPlan(S, group_rows, tuned=tuned, device=device)
    point_idx = torch.arange(n, device=device)

    # Clean outputs, chunked like everything else.
    clean = torch.cat(
        [call_scalar(fn, x[i : i + chunk_size], point_idx[i : i + chunk_size]) for i in range(0, n, chunk_size)]
    )
    if clean.shape[0] != n:
        raise ValueError(f"the model must return one output row per input, got {clean.shape[0]} rows for {n}")

    # Distances are kept in float32 for half-precision inputs (their squares underflow).
    value_dtype = working_dtype(flat)
    values = torch.empty(2, n, M, S, dtype=value_dtype, device=device)
    lin = torch.empty(2, n, M, dtype=dtype, device=device) if probe is not None else None
    half = M // 2 if antithetic else M
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        b = i1 - i0
        draws = torch.empty(b, M, D, dtype=dtype, device=device)
        for j in range(b):
            torch.randn(half, D, generator=generator, dtype=dtype, device=device, out=draws[j, :half])
        if antithetic:
            torch.neg(draws[:, :half], out=draws[:, half:])  # pair j ↔ j + M/2
        B = basis if shared else basis[i0:i1]
        dirs = torch.empty(2, b, M, D, dtype=dtype, device=device)
        torch.matmul(draws @ B, B.transpose(-1, -2), out=dirs[0])  # u_T = B(Bᵀu), batched
        torch.sub(draws, dirs[0], out=dirs[1])  # u_N = u − u_T
        del draws
        if unit:
            dirs /= torch.linalg.vector_norm(dirs, dim=-1, keepdim=True)
        if probe is not None:
            lin[:, i0:i1] = (dirs * probe[i0:i1].unsqueeze(1)).sum(-1)
        dirs = dirs.reshape(2 * b * M, D)
        vals = torch.empty(2 * b * M, S, dtype=value_dtype, device=device)
        for c0 in range(0, 2 * b * M, group_rows):  # the fixed plan's calls (memory cap)
            c1 = min(2 * b * M, c0 + group_rows)
            g1 = c0
            while g1 < c1:  # tuned: split at multiples of ALIGN_ROWS rows
                g0 = g1
                g1 = g0 + plan.next_groups(c1 - g0)
                pts = i0 + (torch.arange(g0, g1, device=device) // M) % b
                # x_i + s·v for every scale in one fused pass: [G, S, D].
                inputs = torch.addcmul(flat[pts].unsqueeze(1), scales.view(1, S, 1), dirs[g0:g1].unsqueeze(1))
                rows = pts.repeat_interleave(S)
                out = call_scalar(fn, inputs.reshape(-1, *x.shape[1:]), rows)
                if out.shape[0] != rows.shape[0]:
                    raise ValueError(
                        f"the model must return one output row per input, got {out.shape[0]} rows for {rows.shape[0]}"
                    )
                vals[g0:g1] = distance(out, clean[rows]).view(g1 - g0, S).to(value_dtype)
                plan.done(g1 - g0)
        values[:, i0:i1] = vals.view(2, b, M, S)
    return values, lin


def draw_units(values: torch.Tensor, antithetic: bool) -> torch.Tensor:
    """Independent Monte-Carlo units along dim 2: draws, or antithetic pair means."""
    if not antithetic:
        return values
    half = values.shape[2] // 2
    return 0.5 * (values[:, :, :half] + values[:, :, half:])


def summarise(values: torch.Tensor, antithetic: bool = False) -> dict[str, torch.Tensor]:
    """Means over draws and points and their standard errors.

    Parameters
    ----------
    values : Tensor, shape [2, n, M, S]

    Returns
    -------
    dict with ``per_point [2, n, S]`` (mean over draws), ``mean [2, S]`` (mean
    over points) and ``stderr [2, S]``: the standard error over points
    (``std/√n``, which includes the Monte-Carlo noise of each point's mean) when
    ``n ≥ 2``, and the Monte-Carlo standard error over draws when ``n = 1``; with
    ``n = 0`` the means and standard errors are NaN.
    """
    units = draw_units(values, antithetic)
    per_point = units.mean(2)
    n, m = values.shape[1], units.shape[2]
    if n >= 2:
        stderr = per_point.std(1) / math.sqrt(n)
    elif n == 1 and m >= 2:
        stderr = units[:, 0].std(1) / math.sqrt(m)
    else:
        stderr = per_point.new_full((per_point.shape[0], per_point.shape[2]), float("nan"))
    return {"per_point": per_point, "mean": per_point.mean(1), "stderr": stderr}


@dataclass(frozen=True)
class RobustnessResult:
    """Common fields of on/off-manifold sensitivity estimates (shapes below).

    Attributes
    ----------
    scales : Tensor, shape [S]
        Noise levels σ or step sizes ε.
    on, off : Tensor, shape [S]
        Tangent (on-manifold) and normal (off-manifold) sensitivity, mean over
        points and draws. Larger = less robust.
    on_stderr, off_stderr : Tensor, shape [S]
        Their standard errors (over points; over draws when there is one point).
    on_per_point, off_per_point : Tensor, shape [n, S]
        Per-point means over draws.
    n_samples : int
        Draws (directions) per point.
    """

    scales: torch.Tensor
    on: torch.Tensor
    off: torch.Tensor
    on_stderr: torch.Tensor
    off_stderr: torch.Tensor
    on_per_point: torch.Tensor
    off_per_point: torch.Tensor
    n_samples: int

    @property
    def ratio(self) -> torch.Tensor:
        """``off / on``, shape [S]: the ρ of "ρ-off-manifold robust" (ratio of means)."""
        return self.off / self.on

    def as_dict(self) -> dict:
        """Plain Python lists and numbers, ready for JSON reports."""
        out = {
            "on": self.on.tolist(),
            "off": self.off.tolist(),
            "on_stderr": self.on_stderr.tolist(),
            "off_stderr": self.off_stderr.tolist(),
            "ratio": self.ratio.tolist(),
            "n_points": int(self.on_per_point.shape[0]),
            "n_samples": self.n_samples,
        }
        return out

    @classmethod
    def _from_values(cls, scales: torch.Tensor, values: torch.Tensor, antithetic: bool = False):
        s = summarise(values, antithetic)
        return cls(
            scales=scales,
            on=s["mean"][0],
            off=s["mean"][1],
            on_stderr=s["stderr"][0],
            off_stderr=s["stderr"][1],
            on_per_point=s["per_point"][0],
            off_per_point=s["per_point"][1],
            n_samples=values.shape[2],
        )
