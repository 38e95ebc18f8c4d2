"""RenderedShape: images in [0, 1), an immersion, and tangent spaces equal to float64 finite differences."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from manifold_lab.manifolds import RenderedShape, orthonormal_span
from manifold_lab.manifolds.rendered_shapes import POSE_COORDINATES

POSES = [POSE_COORDINATES, ("x", "y"), ("rotation",), ("log_scale", "rotation")]
#: One manifold per pose set, shared by the examples of a property test.
MANIFOLDS = {pose: RenderedShape(pose=pose) for pose in POSES}


@pytest.mark.parametrize("pose", POSES)
def test_samples_are_images_of_the_right_shape(pose):
    m = RenderedShape(pose=pose)
    x, z = m.sample_with_latent(16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.shape == (16, 784) and z.shape == (16, len(pose)) and m.intrinsic_dim == len(pose)
    assert float(x.min()) >= 0 and float(x.max()) < 1
    assert m.to_images(x).shape == (16, 1, 28, 28)
    half = m.half_widths
    assert bool((z.abs() <= half).all())


# One pose in the default suite (54-82 s each at load ~10); every pose with -m slow.
@pytest.mark.parametrize("pose", [POSES[0], *(pytest.param(p, marks=pytest.mark.slow) for p in POSES[1:])])
@settings(max_examples=3)
@given(seed=st.integers(0, 2**31 - 1))
def test_tangent_basis_matches_central_differences(pose, seed):
    m = MANIFOLDS[pose]
    _, z = m.sample_with_latent(3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    h = 1e-6
    cols = []
    for i in range(m.intrinsic_dim):
        e = torch.zeros_like(z)
        e[:, i] = h
        cols.append((m.render(z + e) - m.render(z - e)) / (2 * h))
    fd = torch.stack(cols, dim=-1)
    torch.testing.assert_close(m.jacobian_at(z), fd, rtol=1e-6, atol=1e-7)
    basis = m.tangent_basis_at(z)
    ref = orthonormal_span(fd)
    err = torch.linalg.matrix_norm(basis @ basis.mT - ref @ ref.mT, ord=2)
    assert float(err.max()) < 1e-6


def test_pose_coordinates_mean_what_they_say():
    # Shifting by exactly two pixels to the right moves the glyph two columns.
    m = RenderedShape(pose=("x", "y"))
    z = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    step = 2 * 2 / 28
    a = m.to_images(m.render(z))[0, 0]
    b = m.to_images(m.render(z + torch.tensor([[step, 0.0]], dtype=torch.float64)))[0, 0]
    torch.testing.assert_close(b[:, 6:22], a[:, 4:20])
    # Upwards is towards row 0.
    c = m.to_images(m.render(z + torch.tensor([[0.0, step]], dtype=torch.float64)))[0, 0]
    torch.testing.assert_close(c[4:20, :], a[6:22, :])
    # A quarter turn of the full pose rotates the image by 90 degrees (square grid).
    full = RenderedShape()
    r0 = full.to_images(full.render(torch.zeros(1, 4, dtype=torch.float64)))[0, 0]
    r1 = full.to_images(full.render(torch.tensor([[0, 0, 0, math.pi / 2]], dtype=torch.float64)))[0, 0]
    torch.testing.assert_close(r1, torch.rot90(r0, 1), atol=1e-12, rtol=0)


def test_render_is_an_immersion_across_the_pose_box():
    m = RenderedShape()
    _, z = m.sample_with_latent(64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    s = torch.linalg.svdvals(m.jacobian_at(z))
    assert float((s[:, -1] / s[:, 0]).min()) > 0.05


@pytest.mark.parametrize("kwargs, match", [
    ({"pose": ("x", "zoom")}, "pose must be"),
    ({"pose": ()}, "pose must be"),
    ({"pose": ("x", "x")}, "pose must be"),
    ({"ranges": {"x": -1.0}}, "ranges must be"),
    ({"glyph": ((0, 0, 0.1),)}, "glyph must be"),
    ({"glyph": ((0, 0, 0.1, 0.0),)}, "widths"),
    ({"image_size": 1}, "image height"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RenderedShape(**kwargs)
