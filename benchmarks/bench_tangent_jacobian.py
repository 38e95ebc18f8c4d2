"""Tangent spaces of a conv decoder: forward-mode batched Jacobian vs one backward pass per pixel.

The naive pattern is the one in the paper's released code (docs/theory.md, "Known
defects"): for each image, for each of its ``d`` output pixels, one
``torch.autograd.grad`` of that pixel with respect to the latent ``z`` (``d``
backward passes per image, one image at a time). ``ImmersedManifold.tangent_basis_at``
instead pushes the ``k`` latent directions forward through the whole batch at
once (``vmap`` of ``jvp``), about ``k`` forward passes in total.

Both paths use the same decoder in the same run and orthonormalise the same way
(``orthonormal_span``), so the subspace error measures only the Jacobians' agreement.
The naive path may be timed on the first ``--naive-images`` latents and scaled
per image (its cost is exactly linear in the number of images: they are processed
one by one); the subspace error is computed on those images.

    python benchmarks/bench_tangent_jacobian.py [--batch 32] [--naive-images 4]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
from torch import nn

from manifold_lab.manifolds import ImmersedManifold, orthonormal_span

LATENT_DIM = 16
IMAGE_SHAPE = (1, 28, 28)
#: Acceptance thresholds of issue 2.
MIN_SPEEDUP = 50.0
MAX_SUBSPACE_ERROR = 1e-4


def build_decoder(latent_dim: int = LATENT_DIM, *, width: int = 32, seed: int = 0) -> nn.Module:
    """Latent ``[n, k]`` -> image ``[n, 1, 28, 28]`` -> ``Flatten`` ``[n, 784]``, eval mode.

    ``Linear -> reshape 7x7 -> ConvTranspose (14x14) -> BatchNorm -> ConvTranspose
    (28x28) -> sigmoid -> Flatten``, smooth activations (SiLU), parameters drawn
    from a seeded generator (N(0, 1/fan_in)) and BatchNorm statistics set from one
    seeded training-mode pass, so the eval-mode decoder is non-trivial.
    """
    decoder = nn.Sequential(
        nn.Linear(latent_dim, width * 7 * 7), nn.SiLU(), nn.Unflatten(1, (width, 7, 7)),
        nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.BatchNorm2d(width // 2), nn.SiLU(),
        nn.ConvTranspose2d(width // 2, IMAGE_SHAPE[0], 4, stride=2, padding=1), nn.Sigmoid(), nn.Flatten(),
    )
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in decoder.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else p.shape[0]
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
        decoder.train()
        decoder(torch.randn(64, latent_dim, generator=gen))
    return decoder.eval()


def naive_jacobian(decoder: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Released-code pattern: per image, one ``autograd.grad`` per output pixel. ``[n, k] -> [n, d, k]``."""
    jacs = []
    for zi in z:
        zi = zi.detach().clone().requires_grad_(True)
        out = decoder(zi[None])[0]
        rows = [torch.autograd.grad(out[p], zi, retain_graph=True)[0] for p in range(out.shape[0])]
        jacs.append(torch.stack(rows))
    return torch.stack(jacs)


def subspace_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|| U_a U_a^T - U_b U_b^T ||_2`` per item, ``[..., d, k] x2 -> [...]`` (in float64)."""
    a, b = a.double(), b.double()
    return torch.linalg.matrix_norm(a @ a.mT - b @ b.mT, ord=2)


def _time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def compare(batch: int = 32, naive_images: int = 4, *, latent_dim: int = LATENT_DIM, width: int = 32,
            repeats: int = 5, dtype: torch.dtype = torch.float32, device: str = "cpu",
            seed: int = 0) -> dict:
    """Time both paths on one decoder and one batch of latents; return the numbers.

    Returns
    -------
    dict
        ``fast_s`` (median over ``repeats`` of the whole batch), ``naive_s_per_image``,
        ``naive_s`` (scaled to ``batch`` images), ``speedup``, ``max_subspace_error``
        (over the ``naive_images`` compared), ``batch``, ``naive_images``, ``d``, ``k``.
    """
    decoder = build_decoder(latent_dim, width=width, seed=seed).to(device=device, dtype=dtype)
    d = math.prod(IMAGE_SHAPE)
    manifold = ImmersedManifold(decoder, latent_dim, d)
    gen = torch.Generator().manual_seed(seed + 1)
    z = torch.randn(batch, latent_dim, generator=gen, dtype=dtype).to(device)
    naive_images = min(naive_images, batch)

    manifold.tangent_basis_at(z[:2])  # warm-up: first vmap/jvp call traces decompositions
    fast_s, fast_basis = _time(lambda: manifold.tangent_basis_at(z), repeats)
    naive_total, naive_jac = _time(lambda: naive_jacobian(decoder, z[:naive_images]), 1)
    naive_basis = orthonormal_span(naive_jac)
    per_image = naive_total / naive_images
    err = subspace_error(fast_basis[:naive_images], naive_basis).max().item()
    return {"batch": batch, "naive_images": naive_images, "d": d, "k": latent_dim,
            "fast_s": fast_s, "naive_s_per_image": per_image, "naive_s": per_image * batch,
            "speedup": per_image * batch / fast_s, "max_subspace_error": err}


def _table(r: dict) -> str:
    rows = [
        ("method", "images timed", "per image (ms)", f"batch of {r['batch']} (s)", "speed-up"),
        ("forward-mode vmap(jvp)", str(r["batch"]), f"{1e3 * r['fast_s'] / r['batch']:.3f}",
         f"{r['fast_s']:.4f}", f"{r['speedup']:.0f}x"),
        ("backward per pixel", str(r["naive_images"]), f"{1e3 * r['naive_s_per_image']:.1f}",
         f"{r['naive_s']:.2f}", "1x (reference)"),
    ]
    rows[2] = rows[2][:3] + (rows[2][3] + " (scaled)",) + rows[2][4:]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="latents in the batch (default 32)")
    parser.add_argument("--naive-images", type=int, default=4,
                        help="images the naive path is timed and compared on (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats of the fast path")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.naive_images < 1 or args.repeats < 1:
        parser.error("--batch, --naive-images and --repeats must be >= 1")
    r = compare(args.batch, args.naive_images, repeats=args.repeats, dtype=getattr(torch, args.dtype),
                device=args.device, seed=args.seed)
    print(f"Tangent spaces of a conv decoder, latent {r['k']} -> {r['d']} pixels, {args.dtype}, "
          f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(_table(r))
    ok = r["speedup"] >= MIN_SPEEDUP and r["max_subspace_error"] < MAX_SUBSPACE_ERROR
    print(f"speed-up {r['speedup']:.0f}x (need >= {MIN_SPEEDUP:.0f}x), max subspace error "
          f"{r['max_subspace_error']:.2e} over {r['naive_images']} images (need < {MAX_SUBSPACE_ERROR:.0e}): "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
