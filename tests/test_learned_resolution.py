"""The 224 px / 64 px meeting point: antialiased resize = Pillow's, its adjoint, lifted bases,
and the ImageNet evaluation transform (torchvision's Resize(256) + CenterCrop(224) rule)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from PIL import Image

from manifold_lab.datasets import imagenet_classes, imagenet_items, load_imagenet_images
from manifold_lab.learned.resolution import antialiased_resize, lift_basis, resize_adjoint


def pil_resize(plane: np.ndarray, hw) -> np.ndarray:
    """Pillow's antialiased bilinear resize of one float32 plane (mode "F": no uint8 rounding)."""
    img = Image.fromarray(plane.astype(np.float32), mode="F")
    return np.asarray(img.resize((hw[1], hw[0]), Image.Resampling.BILINEAR), dtype=np.float64)


@pytest.mark.parametrize("src, dst", [((224, 224), (64, 64)), ((50, 70), (16, 20)), ((37, 37), (32, 32))])
def test_antialiased_resize_is_pillows_bilinear(src, dst):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((2, 3, *src), generator=gen, dtype=torch.float64)
    got = antialiased_resize(x, dst)
    assert got.shape == (2, 3, *dst)
    for n in range(2):
        for c in range(3):
            np.testing.assert_allclose(got[n, c].numpy(), pil_resize(x[n, c].numpy(), dst), atol=2e-6)


@given(seed=st.integers(0, 2 ** 16), h=st.integers(4, 40), w=st.integers(4, 40))
def test_adjoint_satisfies_the_inner_product_identity_in_float64(seed, h, w):
    gen = torch.Generator().manual_seed(seed)
    H, W = h + int(torch.randint(0, 30, (), generator=gen)), w + int(torch.randint(0, 30, (), generator=gen))
    u = torch.randn((2, 3, H, W), generator=gen, dtype=torch.float64)
    v = torch.randn((2, 3, h, w), generator=gen, dtype=torch.float64)
    lhs = float((antialiased_resize(u, (h, w)) * v).sum())
    rhs = float((u * resize_adjoint(v, (H, W))).sum())
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


def test_lifted_basis_is_orthonormal_and_spans_the_adjoint_image():
    gen = torch.Generator().manual_seed(1)
    low, high, k = (3, 8, 8), (20, 24), 4
    basis = torch.linalg.qr(torch.randn((2, 3 * 8 * 8, k), generator=gen, dtype=torch.float64)).Q
    q = lift_basis(basis, low, high)
    assert q.shape == (2, 3 * 20 * 24, k)
    torch.testing.assert_close(q.transpose(1, 2) @ q, torch.eye(k, dtype=torch.float64).expand(2, k, k))
    # Each column A^T b (built here column by column) lies in span(Q): Q Q^T A^T b = A^T b.
    for n in range(2):
        for j in range(k):
            col = resize_adjoint(basis[n, :, j].reshape(1, *low), high).reshape(-1)
            torch.testing.assert_close(q[n] @ (q[n].T @ col), col)


def _coordinate_image(path, w, h):
    """R = column index, G = row index (mod 256): crop offsets can be read off a pixel."""
    xs, ys = np.meshgrid(np.arange(w), np.arange(h))
    rgb = np.stack([xs % 256, ys % 256, np.zeros_like(xs)], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def test_centre_crop_offsets_follow_torchvision(tmp_path):
    # 256 x 300 (w x h): no resize (short side already 256); crop offsets round((256-224)/2) = 16
    # and round((300-224)/2) = 38.
    _coordinate_image(tmp_path / "a.png", 256, 300)
    x = load_imagenet_images([tmp_path / "a.png"])
    assert x.shape == (1, 3, 224, 224)
    assert round(float(x[0, 0, 0, 0]) * 255) == 16 and round(float(x[0, 1, 0, 0]) * 255) == 38
    assert round(float(x[0, 0, 0, 223]) * 255) == 16 + 223


def test_shorter_side_is_resized_to_256_with_pillows_bilinear(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(400, 320, 3), dtype=np.uint8)  # h 400, w 320
    Image.fromarray(arr).save(tmp_path / "b.png")
    x = load_imagenet_images([tmp_path / "b.png"])
    # torchvision: short side 320 -> 256, long side int(256 * 400 / 320) = 320; then crop (16, 48).
    ref = Image.fromarray(arr).resize((256, 320), Image.Resampling.BILINEAR)
    ref = np.asarray(ref)[48:48 + 224, 16:16 + 224].transpose(2, 0, 1)
    np.testing.assert_array_equal((x[0].numpy() * 255).round().astype(np.uint8), ref)


def test_class_order_keeps_empty_folders_like_torchvision(tmp_path):
    for name in ("b", "a", "c"):
        (tmp_path / name).mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "c" / "1.JPEG")  # ImageNet val files: upper-case suffix
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a" / "1.png")
    assert imagenet_classes(tmp_path) == ["a", "b", "c"]
    assert [label for _, label in imagenet_items(tmp_path)] == [0, 2]
