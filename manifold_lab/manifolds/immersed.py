"""``ImmersedManifold``: the image of a differentiable map ``embed: R^k -> R^d`` (an MLP, a decoder).

Tangent spaces come from the Jacobian ``J(z) = d embed / d z`` in forward mode:
one Jacobian-vector product per latent direction ``e_i``, all ``k`` of them
vectorised with ``torch.func.vmap`` and each one batched over the whole batch of
latents, so the cost is about ``k`` forward passes, whatever ``d`` is (reverse
mode needs one backward pass per output coordinate: ``d`` per latent).
"""

from __future__ import annotations

from typing import Callable

import torch

from manifold_lab._validation import check_float_dtype, check_generator, check_positive_int
from manifold_lab.manifolds._analytic import check_dims
from manifold_lab.manifolds.base import Manifold, check_points, point_tolerance

__all__ = ["ImmersedManifold", "forward_jacobian", "orthonormal_span"]


def forward_jacobian(embed: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, *,
                     vectorize: bool = True) -> torch.Tensor:
    """Jacobian of a batched map by forward-mode AD: ``J[n, :, i] = jvp(embed, z, e_i)[n]``.

    ``embed`` is always called on the whole batch ``[n, k]`` with the tangent
    ``e_i`` broadcast to every row, so modules that need a batch dimension
    (convolutions, BatchNorm in eval mode, ``nn.Flatten``) work unchanged. The
    ``k`` directions are mapped with ``torch.func.vmap``; ``vectorize=False``
    loops over them instead (for maps with an op that has no vmap rule).

    Parameters
    ----------
    embed : callable, Tensor [n, k] -> Tensor [n, d]
    z : Tensor, shape [n, k]

    Returns
    -------
    Tensor, shape [n, d, k]
    """
    n, k = z.shape
    directions = torch.eye(k, dtype=z.dtype, device=z.device)

    def push(direction: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(embed, (z,), (direction.expand(n, k),))[1]

    # No autograd graph is needed for a Jacobian that is not differentiated again.
    with torch.no_grad():
        if vectorize:
            jac = torch.func.vmap(push)(directions)
        else:
            jac = torch.stack([push(e) for e in directions])
    return jac.permute(1, 2, 0)


def orthonormal_span(jac: torch.Tensor, *, rank_rtol: float | None = None) -> torch.Tensor:
    """Orthonormal basis ``U`` of ``range(J)`` from the thin SVD ``J = U S V^T``.

    Rank deficiency: where ``s_min <= rank_rtol * s_max`` the span is numerically
    lower-dimensional (the map is not an immersion there) and ``U`` would hold
    arbitrary columns, so a ``ValueError`` is raised instead. Default
    ``rank_rtol = max(d, k) * eps(dtype)``, the usual numerical-rank threshold.

    Parameters
    ----------
    jac : Tensor, shape [..., d, k]

    Returns
    -------
    Tensor, shape [..., d, k]
    """
    d, k = jac.shape[-2:]
    u, s, _ = torch.linalg.svd(jac, full_matrices=False)
    rtol = max(d, k) * torch.finfo(jac.dtype).eps if rank_rtol is None else float(rank_rtol)
    deficient = s[..., -1] <= rtol * s[..., 0]
    if bool(deficient.any()):
        raise ValueError(f"the Jacobian has rank < {k} at {int(deficient.sum())} latent(s) "
                         f"(s_min/s_max <= rank_rtol={rtol:.1e}): embed is not an immersion there, "
                         "so its tangent space is undefined; move z or lower rank_rtol")
    return u


class ImmersedManifold(Manifold):
    """The image ``M = embed(R^k)`` of a differentiable map into ``R^d``.

    Parameters
    ----------
    embed : callable, Tensor [n, k] -> Tensor [n, d]
        Any differentiable batched map (an MLP, a conv decoder ending in
        ``nn.Flatten``). Put ``nn.Module`` decoders in eval mode first: the tangent
        space of a train-mode BatchNorm/Dropout network is not a property of the
        input, and vmap refuses their in-place statistics updates.
    latent_dim : int
        ``k < d``.
    ambient_dim : int
        ``d``.
    chart : callable, Tensor [n, d] -> Tensor [n, k], optional
        A left inverse of ``embed`` (e.g. an encoder). Without one,
        ``tangent_basis(x)`` cannot know the latent of ``x`` and raises
        ``NotImplementedError``; use ``tangent_basis_at(z)``.
    latent_sampler : callable, optional
        ``latent_sampler(n, generator=, dtype=, device=) -> [n, k]``; the default
        draws ``z ~ N(0, I_k)``.
    vectorize : bool
        ``vmap`` over the latent directions (default) or loop over them.

    Notes
    -----
    Sampling measure: the push-forward ``embed_# p_z`` of the latent law (not a
    uniform measure on ``M``). ``nearest_point``/``distance`` have no closed form.
    """

    def __init__(self, embed: Callable[[torch.Tensor], torch.Tensor], latent_dim: int, ambient_dim: int,
                 *, chart: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 latent_sampler: Callable[..., torch.Tensor] | None = None, vectorize: bool = True):
        if not callable(embed):
            raise ValueError(f"embed must be a callable [n, k] -> [n, d], got {type(embed).__name__}")
        check_dims(latent_dim, ambient_dim)
        self.embed_fn = embed
        self.chart = chart
        self.latent_sampler = latent_sampler
        self.vectorize = vectorize
        self._k, self._d = latent_dim, ambient_dim

    @property
    def ambient_dim(self) -> int:
        return self._d

    @property
    def intrinsic_dim(self) -> int:
        return self._k

    def _embed_flat(self, z: torch.Tensor) -> torch.Tensor:
        out = self.embed_fn(z)
        if out.shape != (z.shape[0], self._d):
            raise ValueError(f"embed must map [n, {self._k}] to [n, {self._d}], got output shape "
                             f"{list(out.shape)} for input {list(z.shape)}; end a decoder with nn.Flatten()")
        return out

    def embed(self, z: torch.Tensor) -> torch.Tensor:
        """Points ``embed(z)`` of the manifold: ``[..., k] -> [..., d]``."""
        z = check_points("z", z, self._k)
        return self._embed_flat(z.reshape(-1, self._k)).reshape(*z.shape[:-1], self._d)

    def jacobian_at(self, z: torch.Tensor) -> torch.Tensor:
        """``J(z) = d embed / d z`` in forward mode (see ``forward_jacobian``): ``[..., k] -> [..., d, k]``."""
        z = check_points("z", z, self._k)
        jac = forward_jacobian(self._embed_flat, z.reshape(-1, self._k), vectorize=self.vectorize)
        return jac.reshape(*z.shape[:-1], self._d, self._k)

    def tangent_basis_at(self, z: torch.Tensor, *, rank_rtol: float | None = None) -> torch.Tensor:
        """Orthonormal basis of ``T_{embed(z)} M = range(J(z))``.

        Parameters
        ----------
        z : Tensor, shape [..., k]
            Latents.
        rank_rtol : float, optional
            Numerical-rank threshold (see ``orthonormal_span``).

        Returns
        -------
        Tensor, shape [..., d, k]
        """
        return orthonormal_span(self.jacobian_at(z), rank_rtol=rank_rtol)

    def sample_with_latent(self, n: int, *, generator: torch.Generator | None = None,
                           dtype: torch.dtype = torch.float32,
                           device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(x [n, d], z [n, k])`` with ``x = embed(z)``; ``z`` drawn in float64, cast to ``dtype``."""
        check_positive_int("n", n)
        check_generator(generator, device)
        check_float_dtype("dtype", dtype)
        if self.latent_sampler is None:
            z = torch.randn(n, self._k, generator=generator, dtype=torch.float64, device=device)
        else:
            z = self.latent_sampler(n, generator=generator, dtype=torch.float64, device=device)
        z = z.to(dtype)
        with torch.no_grad():
            return self.embed(z), z

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
        """``embed(z)`` for ``n`` latents from the latent law: shape [n, d]."""
        return self.sample_with_latent(n, generator=generator, dtype=dtype, device=device)[0]

    def tangent_basis(self, x: torch.Tensor, *, max_distance: float | None = None) -> torch.Tensor:
        """Basis at ``x`` through the chart: ``tangent_basis_at(chart(x))``.

        Needs ``chart=`` (else ``NotImplementedError``); raises ``ValueError`` when
        ``|embed(chart(x)) - x| > max_distance`` (default: rounding level, as for
        the analytic manifolds; an approximate encoder needs a larger value).
        """
        if self.chart is None:
            raise NotImplementedError("ImmersedManifold.tangent_basis(x) needs the latent of x: call "
                                      "tangent_basis_at(z), or build the manifold with chart=encoder")
        x = check_points("x", x, self._d)
        flat = x.reshape(-1, self._d)
        with torch.no_grad():
            z = self.chart(flat)
            resid = torch.linalg.vector_norm(self._embed_flat(z) - flat, dim=-1)
        tol = point_tolerance(flat, max_distance)
        if bool((resid > tol).any()):
            raise ValueError(f"{int((resid > tol).sum())} point(s) of x lie off the ImmersedManifold "
                             f"(largest |embed(chart(x)) - x| = {float(resid.max()):.3g} > tolerance); "
                             "pass points on the manifold or raise max_distance=")
        return self.tangent_basis_at(z).reshape(*x.shape[:-1], self._d, self._k)

    def transformed(self, rotation: torch.Tensor, shift: torch.Tensor | None = None) -> "ImmersedManifold":
        """The image of ``M`` under ``x -> rotation @ x + shift`` (``rotation`` orthogonal ``[d, d]``)."""
        rot = rotation.detach().to(torch.float64)
        sh = torch.zeros(self._d, dtype=torch.float64) if shift is None else shift.detach().to(torch.float64)
        embed, chart = self.embed_fn, self.chart

        def new_embed(z):
            return embed(z) @ rot.to(z.device, z.dtype).T + sh.to(z.device, z.dtype)

        new_chart = None if chart is None else (
            lambda x: chart((x - sh.to(x.device, x.dtype)) @ rot.to(x.device, x.dtype)))
        return ImmersedManifold(new_embed, self._k, self._d, chart=new_chart,
                                latent_sampler=self.latent_sampler, vectorize=self.vectorize)
