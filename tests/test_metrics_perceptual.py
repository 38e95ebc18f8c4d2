"""Perceptual similarity: cosine, SSIM against a float64 reference, LPIPS on weight files written here."""

import math

import pytest
import torch
import torch.nn.functional as F

from manifold_lab.metrics import image_cosine, lpips_similarity, normalize_images, ssim_similarity
from manifold_lab.metrics.lpips import CHANNELS, LPIPSAlexNet

GEN = torch.Generator().manual_seed(0)
A = torch.randn(3, 1, 28, 28, generator=GEN, dtype=torch.float64)
B = A + 0.7 * torch.randn(3, 1, 28, 28, generator=GEN, dtype=torch.float64)


def test_image_cosine():
    ref = (A * B).flatten(1).sum(1) / (A.flatten(1).norm(dim=1) * B.flatten(1).norm(dim=1))
    torch.testing.assert_close(image_cosine(A, B), ref)
    torch.testing.assert_close(image_cosine(A, 5 * A), torch.ones(3, dtype=torch.float64))


def test_normalizations():
    v = A.clone()
    v[0, 0, 0, 0] = 100.0  # one outlier pixel
    m = normalize_images(v, "max_abs")
    assert torch.allclose(m.flatten(1).abs().amax(1), torch.ones(3, dtype=torch.float64))
    q = normalize_images(v, "quantile")
    assert float(q.abs().max()) <= 1.0
    # the outlier squeezes max_abs, not the quantile scaling
    assert float(q[0].abs().mean()) > 10 * float(m[0].abs().mean())
    torch.testing.assert_close(normalize_images(3 * v, "quantile"), q)
    assert normalize_images(torch.zeros(1, 1, 4, 4)).abs().sum() == 0
    with pytest.raises(ValueError, match="normalize must be"):
        normalize_images(v, "l2")


def reference_ssim(x, y, data_range=2.0, win=11, sigma=1.5):
    """Wang et al. (2004) with a separable Gaussian window, valid positions only, float64."""
    g = torch.exp(-((torch.arange(win, dtype=torch.float64) - win // 2) ** 2) / (2 * sigma ** 2))
    g = (g / g.sum())
    k = (g[:, None] * g[None, :])[None, None]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = F.conv2d(x, k), F.conv2d(y, k)
    sxx, syy, sxy = F.conv2d(x * x, k) - mx ** 2, F.conv2d(y * y, k) - my ** 2, F.conv2d(x * y, k) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return ssim.flatten(1).mean(1)


@pytest.mark.parametrize("normalize", ["max_abs", "quantile"])
def test_ssim_matches_the_formula(normalize):
    got = ssim_similarity(A, B, normalize=normalize)
    ref = reference_ssim(normalize_images(A, normalize), normalize_images(B, normalize))
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ssim_similarity(A, 4 * A), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 11"):
        ssim_similarity(A[..., :8, :8], B[..., :8, :8])


def write_weights(tmp_path, seed=0):
    """A torchvision-format AlexNet state_dict and an lpips-format linear-layer file, random values."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {"features.0": (64, 3, 11, 11), "features.3": (192, 64, 5, 5), "features.6": (384, 192, 3, 3),
              "features.8": (256, 384, 3, 3), "features.10": (256, 256, 3, 3)}
    backbone = {}
    for name, shape in shapes.items():
        fan_in = math.prod(shape[1:])
        backbone[f"{name}.weight"] = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
        backbone[f"{name}.bias"] = 0.01 * torch.randn(shape[0], generator=gen)
    for i, (o, n) in {1: (16, 9216), 4: (16, 16), 6: (10, 16)}.items():  # classifier (unused, shrunk)
        backbone[f"classifier.{i}.weight"] = torch.zeros(o, n)
        backbone[f"classifier.{i}.bias"] = torch.zeros(o)
    linear = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for i, c in enumerate(CHANNELS)}
    torch.save(backbone, tmp_path / "alexnet-owt-7be5be79.pth")
    torch.save(linear, tmp_path / "alex.pth")
    return backbone, linear


def reference_lpips(x, y, backbone, linear):
    """LPIPS v0.1 written out with functional ops, from the two weight dicts."""
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=x.dtype)[None, :, None, None]
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=x.dtype)[None, :, None, None]

    def feats(v):
        v = (v - shift) / scale
        w = {k: t.to(v.dtype) for k, t in backbone.items()}
        out = []
        v = F.relu(F.conv2d(v, w["features.0.weight"], w["features.0.bias"], stride=4, padding=2))
        out.append(v)
        v = F.relu(F.conv2d(F.max_pool2d(v, 3, 2), w["features.3.weight"], w["features.3.bias"], padding=2))
        out.append(v)
        v = F.relu(F.conv2d(F.max_pool2d(v, 3, 2), w["features.6.weight"], w["features.6.bias"], padding=1))
        out.append(v)
        v = F.relu(F.conv2d(v, w["features.8.weight"], w["features.8.bias"], padding=1))
        out.append(v)
        v = F.relu(F.conv2d(v, w["features.10.weight"], w["features.10.bias"], padding=1))
        out.append(v)
        return out

    total = 0
    for i, (a, b) in enumerate(zip(feats(x), feats(y))):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + ((a - b) ** 2 * linear[f"lin{i}.model.1.weight"].to(x.dtype)).sum(1).mean((1, 2))
    return total


@pytest.mark.parametrize("upsample_to", [32, 64])
def test_lpips_matches_the_formula_on_written_weight_files(tmp_path, upsample_to):
    backbone, linear = write_weights(tmp_path)
    net = LPIPSAlexNet(tmp_path / "alexnet-owt-7be5be79.pth", tmp_path / "alex.pth")
    got = lpips_similarity(A, B, model=net, upsample_to=upsample_to)
    na, nb = (F.interpolate(normalize_images(v), size=(upsample_to,) * 2, mode="bilinear", align_corners=False)
              .expand(-1, 3, -1, -1) for v in (A, B))
    torch.testing.assert_close(got, 1 - reference_lpips(na, nb, backbone, linear), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lpips_similarity(A, 2 * A, model=net, upsample_to=upsample_to),
                               torch.ones(3, dtype=torch.float64))
    # the path arguments build the same network
    again = lpips_similarity(A, B, backbone_path=tmp_path / "alexnet-owt-7be5be79.pth",
                             linear_path=tmp_path / "alex.pth", upsample_to=upsample_to)
    torch.testing.assert_close(again, got)


def test_lpips_errors_name_the_missing_file(tmp_path, monkeypatch):
    write_weights(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere.pth") as info:
        LPIPSAlexNet(tmp_path / "nowhere.pth", tmp_path / "alex.pth")
    assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="no-lin.pth"):
        LPIPSAlexNet(tmp_path / "alexnet-owt-7be5be79.pth", tmp_path / "no-lin.pth")
    # default lookups: the torch hub cache and the installed lpips package
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="hub/checkpoints/alexnet-owt-7be5be79.pth"):
        LPIPSAlexNet()
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="do not fit"):
        LPIPSAlexNet(tmp_path / "bad.pth", tmp_path / "alex.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="unreadable"):
        LPIPSAlexNet(tmp_path / "garbage.pth", tmp_path / "alex.pth")
    net = LPIPSAlexNet(tmp_path / "alexnet-owt-7be5be79.pth", tmp_path / "alex.pth")
    with pytest.raises(ValueError, match="upsample_to"):
        lpips_similarity(A, B, model=net)

