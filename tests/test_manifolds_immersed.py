"""ImmersedManifold: forward-mode Jacobian tangents against analytic manifolds and reverse mode."""

import math

import pytest
import torch
from torch import nn

from manifold_lab.manifolds import (AffineSubspace, ImmersedManifold, Sphere, SwissRoll, Torus,
                                    forward_jacobian)

F64 = torch.float64
# Analytic agreement (issue 2): subspace distance < 1e-8 in float64. Both sides are closed forms
# evaluated to ~1e-15, the SVD span is exact to ~1e-15 / (s_min / s_max) and every chart below
# has s_min / s_max >= 1e-2 on the sampled latents, so 1e-8 has a wide margin.
ANALYTIC_TOL = 1e-8


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _proj(u):
    return u @ u.mT


def _subspace_distance(a, b):
    return torch.linalg.matrix_norm(_proj(a) - _proj(b), ord=2)


def _parametrisations():
    """(analytic manifold, embed z -> x, latent sampler), with the embeds written out by hand."""
    affine = AffineSubspace(3, 9, seed=1)
    sphere = Sphere(2, 8, radius=1.7, seed=2)
    torus = Torus(7, radii=(2.5, 0.8), seed=3)
    roll = SwissRoll(6, seed=4)

    def sphere_embed(z):  # inverse stereographic projection from the pole e_{k+1}
        sq = z.square().sum(-1, keepdim=True)
        y = torch.cat([2 * z, sq - 1], -1) / (sq + 1)
        return sphere.center.to(z.dtype) + sphere.radius * y @ sphere.frame.to(z.dtype).T

    def torus_embed(u):
        big, small = torus.radii
        ring = big + small * torch.cos(u[..., 1])
        y = torch.stack([ring * torch.cos(u[..., 0]), ring * torch.sin(u[..., 0]), small * torch.sin(u[..., 1])], -1)
        return torus.center.to(u.dtype) + y @ torus.frame.to(u.dtype).T

    def roll_embed(u):
        t, h = u[..., 0], u[..., 1]
        y = torch.stack([t * torch.cos(t), h, t * torch.sin(t)], -1)
        return roll.center.to(u.dtype) + y @ roll.frame.to(u.dtype).T

    def roll_latents(n, gen):
        u = torch.rand(n, 2, generator=gen, dtype=F64)
        return torch.stack([roll.t_range[0] + (roll.t_range[1] - roll.t_range[0]) * u[:, 0], roll.height * u[:, 1]], -1)

    return {
        "affine": (affine, lambda z: affine.offset + z @ affine.frame.T,
                   lambda n, g: torch.randn(n, 3, generator=g, dtype=F64)),
        "sphere": (sphere, sphere_embed, lambda n, g: torch.randn(n, 2, generator=g, dtype=F64)),
        "torus": (torus, torus_embed, lambda n, g: 2 * math.pi * torch.rand(n, 2, generator=g, dtype=F64)),
        "swiss_roll": (roll, roll_embed, roll_latents),
    }


@pytest.mark.parametrize("name", ["affine", "sphere", "torus", "swiss_roll"])
def test_immersed_agrees_with_the_analytic_manifold(name):
    analytic, embed, latents = _parametrisations()[name]
    imm = ImmersedManifold(embed, analytic.intrinsic_dim, analytic.ambient_dim)
    z = latents(64, _gen(0))
    x = imm.embed(z)  # analytic.tangent_basis checks that x lies on the manifold
    dist = _subspace_distance(imm.tangent_basis_at(z), analytic.tangent_basis(x))
    assert dist.max() < ANALYTIC_TOL


def _seeded(module, seed):
    """Overwrite every parameter with seeded N(0, 1/fan_in) values (module init takes no generator)."""
    gen = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            fan_in = p.shape[1] if p.ndim > 1 else p.shape[0]
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
    return module


def _mlp(k, d, seed):
    return _seeded(nn.Sequential(nn.Linear(k, 32), nn.Tanh(), nn.Linear(32, 32), nn.Softplus(),
                                 nn.Linear(32, d)), seed)


def _reverse_jacobian(embed, z):
    """Reference: one reverse-mode pass per output, through torch.autograd.functional."""
    return torch.autograd.functional.jacobian(lambda zz: embed(zz).sum(0), z).permute(1, 0, 2)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_forward_jacobian_matches_reverse_mode(dtype):
    net = _mlp(3, 11, 0).to(dtype)
    z = torch.randn(7, 3, generator=_gen(1), dtype=dtype)
    ref = _reverse_jacobian(net, z)
    # Same function, two AD modes: they differ by rounding only (a few dozen eps per entry).
    tol = 100 * torch.finfo(dtype).eps * ref.abs().max()
    for vectorize in (True, False):
        jac = forward_jacobian(net, z, vectorize=vectorize)
        assert jac.shape == (7, 11, 3) and jac.dtype == dtype
        assert (jac - ref).abs().max() <= tol


def test_conv_decoder_with_batchnorm_and_flatten():
    decoder = _seeded(nn.Sequential(nn.Linear(4, 8 * 4 * 4), nn.Unflatten(1, (8, 4, 4)), nn.BatchNorm2d(8),
                                    nn.SiLU(), nn.ConvTranspose2d(8, 2, 4, stride=2, padding=1), nn.Flatten()), 0)
    decoder.train()
    with torch.no_grad():
        decoder(torch.randn(16, 4, generator=_gen(1)))  # non-trivial BatchNorm running statistics
    decoder.eval()
    imm = ImmersedManifold(decoder, 4, 2 * 8 * 8)
    z = torch.randn(5, 4, generator=_gen(2))
    basis = imm.tangent_basis_at(z)
    ref = _reverse_jacobian(decoder, z)
    assert _subspace_distance(basis, torch.linalg.qr(ref).Q).max() < 1e-4
    # Nothing leaks into parameter gradients, the result carries no graph.
    assert all(p.grad is None for p in decoder.parameters()) and not basis.requires_grad


def test_leading_batch_dims_and_dtype():
    net = _mlp(2, 6, 3).double()
    imm = ImmersedManifold(net, 2, 6)
    z = torch.randn(2, 3, 2, generator=_gen(3), dtype=F64)
    basis = imm.tangent_basis_at(z)
    assert basis.shape == (2, 3, 6, 2) and basis.dtype == F64
    torch.testing.assert_close(basis[1, 2], imm.tangent_basis_at(z[1, 2]))
    x, zz = imm.sample_with_latent(4, generator=_gen(4), dtype=F64)
    torch.testing.assert_close(x, net(zz).detach())


def test_rank_deficient_jacobian_raises():
    imm = ImmersedManifold(lambda z: torch.cat([z[:, :1], z[:, :1], torch.zeros_like(z)], -1), 2, 4)
    with pytest.raises(ValueError, match="not an immersion"):
        imm.tangent_basis_at(torch.ones(3, 2))


def test_tangent_basis_needs_a_chart():
    net = _mlp(2, 5, 4)
    imm = ImmersedManifold(net, 2, 5)
    with pytest.raises(NotImplementedError, match="tangent_basis_at"):
        imm.tangent_basis(imm.sample(3))
    with pytest.raises(NotImplementedError, match="nearest point"):
        imm.nearest_point(imm.sample(3))


def test_chart_residual_check():
    rot = torch.linalg.qr(torch.randn(5, 5, generator=_gen(5), dtype=F64)).Q
    imm = ImmersedManifold(lambda z: torch.cat([z, torch.sin(z)], -1) @ rot[:, :4].T, 2, 5,
                           chart=lambda x: (x @ rot)[:, :2])
    x = imm.sample(4, dtype=F64, generator=_gen(6))
    z = (x @ rot)[:, :2]
    torch.testing.assert_close(imm.tangent_basis(x), imm.tangent_basis_at(z))
    with pytest.raises(ValueError, match="lie off the ImmersedManifold"):
        imm.tangent_basis(x + rot[:, 4])  # the one direction the image never reaches


@pytest.mark.gpu
def test_cuda_matches_cpu(cuda_device):
    net = _mlp(3, 9, 6)
    z = torch.randn(8, 3, generator=_gen(7))
    cpu = ImmersedManifold(net, 3, 9).tangent_basis_at(z)
    gpu = ImmersedManifold(net.to(cuda_device), 3, 9).tangent_basis_at(z.to(cuda_device))
    assert gpu.device.type == "cuda"
    assert _subspace_distance(gpu.cpu(), cpu).max() < 1e-4
    for m in (Sphere(2, 7, seed=1), Torus(6, seed=2), SwissRoll(5, seed=3), AffineSubspace(2, 5, seed=4)):
        gen = torch.Generator(device=cuda_device).manual_seed(0)
        x = m.sample(16, generator=gen, device=cuda_device, dtype=F64)
        assert x.device.type == "cuda"
        basis = m.tangent_basis(x)
        torch.testing.assert_close(basis.cpu(), m.tangent_basis(x.cpu()))
        v = torch.randn_like(x)
        torch.testing.assert_close(m.project_normal(x, v).cpu(), m.project_normal(x.cpu(), v.cpu()))
