"""Learned tangent spaces of 1,000 images: AutoencoderManifold.tangent_basis vs one backward pass per pixel.

The naive pattern is the paper's released code (docs/theory.md, "Known defects"): for
each image, the decoder output at its latent, then one ``torch.autograd.grad`` per
output pixel (784 per 28x28 image), one image at a time. ``tangent_basis`` encodes
the whole batch, pushes the ``k`` latent directions forward through the decoder
(``vmap`` of ``jvp``, in chunks of 32 images) and takes an SVD span. Both paths use the same
(untrained, seeded) :class:`~manifold_lab.models.ConvAutoencoder`; the naive path is
timed on ``--naive-images`` images and scaled to the batch (its cost is linear in
the number of images), and the subspace error ``max |U U^T - V V^T|_2`` is taken on
those images.

    python benchmarks/bench_learned_tangent.py              # ~1 min on 2 CPU cores
    python benchmarks/bench_learned_tangent.py --images 1000 --naive-images 4 --latent-dims 4,8,16

Both paths are compute-bound here (the naive one does ``D`` input-gradient passes per
image, the fast one about ``2 k`` forward passes), so the speed-up falls roughly like
``D / k``: each latent dimension in ``--latent-dims`` is measured and judged on its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from manifold_lab.learned import AutoencoderManifold
from manifold_lab.manifolds import orthonormal_span
from manifold_lab.models import ConvAutoencoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tangent_jacobian import naive_jacobian, subspace_error  # noqa: E402

#: Acceptance thresholds of issue 10.
MIN_SPEEDUP = 100.0
MAX_SUBSPACE_ERROR = 1e-4


def compare(images: int = 1000, naive_images: int = 4, *, latent_dim: int = 16, width: int = 32,
            repeats: int = 3, seed: int = 0) -> dict:
    """Time both paths on one autoencoder and one batch of images; return the numbers."""
    ae = AutoencoderManifold.from_autoencoder(ConvAutoencoder((1, 28, 28), latent_dim, width=width, seed=seed))
    x = torch.rand(images, 1, 28, 28, generator=torch.Generator().manual_seed(seed + 1))
    naive_images = min(naive_images, images)
    ae.tangent_basis(x[:2])  # warm-up: the first jvp call loads its decompositions
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fast = ae.tangent_basis(x)
        times.append(time.perf_counter() - start)
    fast_s = statistics.median(times)
    start = time.perf_counter()
    with torch.no_grad():
        z = ae.encode(x[:naive_images])
    naive = orthonormal_span(naive_jacobian(lambda zz: ae.decoder(zz).flatten(1), z))
    per_image = (time.perf_counter() - start) / naive_images
    err = float(subspace_error(fast[:naive_images], naive).max())
    return {"images": images, "naive_images": naive_images, "k": latent_dim, "fast_s": fast_s,
            "naive_s_per_image": per_image, "naive_s": per_image * images,
            "speedup": per_image * images / fast_s, "max_subspace_error": err}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--naive-images", type=int, default=4)
    parser.add_argument("--latent-dims", default="4,8,16", help="comma-separated latent dimensions")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"Tangent bases of {args.images} 28x28 images, ConvAutoencoder (width 32), float32, torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread(s), load average {os.getloadavg()}")
    ok = True
    for k in (int(v) for v in args.latent_dims.split(",")):
        r = compare(args.images, args.naive_images, latent_dim=k, repeats=args.repeats, seed=args.seed)
        passed = r["speedup"] >= MIN_SPEEDUP and r["max_subspace_error"] < MAX_SUBSPACE_ERROR
        ok = ok and passed
        print(f"latent {k:2d}: tangent_basis {r['fast_s']:.3f} s ({1e3 * r['fast_s'] / r['images']:.2f} ms per "
              f"image); backward per pixel {r['naive_s_per_image']:.3f} s per image (timed on "
              f"{r['naive_images']}), {r['naive_s']:.0f} s scaled; speed-up {r['speedup']:.0f}x (need >= "
              f"{MIN_SPEEDUP:.0f}x), max subspace error {r['max_subspace_error']:.2e} (need < "
              f"{MAX_SUBSPACE_ERROR:.0e}): {'PASS' if passed else 'FAIL'}")
    print(f"load average {os.getloadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
