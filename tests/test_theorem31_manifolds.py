"""Theorem 3.1 and Definition 1/2 at points of the project's own manifolds.

Uses ``manifold_lab.manifolds`` through its DESIGN.md contract only
(``sample(n, generator=..., dtype=...)``, ``tangent_basis(x) -> [n, d, k]``);
every manifold kind present is exercised by the same checks.
"""

import math

import pytest
import torch
from torch import nn

from manifold_lab.metrics import alignment_ratio, manifold_robustness, scalar_gradient, theorem_3_1_table

manifolds = pytest.importorskip("manifold_lab.manifolds")

F64 = torch.float64
D, K = 24, 2

FACTORIES = {
    "AffineSubspace": lambda s: manifolds.AffineSubspace(K, D, seed=s),
    "Sphere": lambda s: manifolds.Sphere(K, D, seed=s),
    "Torus": lambda s: manifolds.Torus(D, seed=s),
    "SwissRoll": lambda s: manifolds.SwissRoll(D, seed=s),
}
KINDS = [name for name in FACTORIES if hasattr(manifolds, name)]


def smooth_net(d, seed):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(d, 32), nn.Softplus(), nn.Linear(32, 1)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64) / math.sqrt(p.shape[-1]))
    scale = 1.0 / (float(torch.linalg.matrix_norm(net[0].weight.detach(), 2)) * math.sqrt(d))
    return (lambda z: net(z).squeeze(-1)), scale


@pytest.mark.parametrize("kind", KINDS)
def test_theorem_3_1_on_manifold_points(kind):
    m = FACTORIES[kind](3)
    x = m.sample(4, generator=torch.Generator().manual_seed(0), dtype=F64)
    B = m.tangent_basis(x)
    f, scale = smooth_net(x.shape[1], 5)
    sig = scale * torch.logspace(-2.5, -1, 4, dtype=F64)
    t = theorem_3_1_table(f, x, B, sig, n_samples=512, generator=torch.Generator().manual_seed(1))
    # Tolerances as in test_theorem31.py (same net family and σ window).
    assert abs(t.loglog_slope() - 2) <= 0.1
    assert all(abs(r["rel_err"]) <= 5 * r["rel_err_stderr"] for r in t.rows)


@pytest.mark.parametrize("kind", KINDS)
def test_function_of_tangent_coordinates_is_off_manifold_blind_to_first_order(kind):
    # A linear f whose gradient lies in T_x M (built from the manifold's own basis):
    # A(x) = 0 up to rounding, and R_N is rounding only while R_T is not.
    m = FACTORIES[kind](4)
    x = m.sample(3, generator=torch.Generator().manual_seed(2), dtype=F64)
    B = m.tangent_basis(x)
    for i in range(3):
        a = B[i] @ torch.tensor([0.6, -0.8], dtype=F64)[: B.shape[-1]]
        f = lambda z: z @ a
        assert float(alignment_ratio(scalar_gradient(f, x[i : i + 1]), B[i : i + 1])) < 1e-24
        r = manifold_robustness(f, x[i : i + 1], B[i : i + 1], [0.1], n_samples=16,
                                generator=torch.Generator().manual_seed(i))
        assert float(r.off) < 1e-24 * float(r.on) + 1e-26
