"""How good are an autoencoder's tangent spaces? Measured on RenderedShape, whose tangents are exact.

Fits :func:`manifold_lab.learned.fit_autoencoder` on images of the posed glyph
(:class:`manifold_lab.manifolds.RenderedShape`, 28x28, true dimension 4) for each
latent dimension, and at each epoch count in ``--epochs`` (one resumable run per
latent dimension, so the numbers at 20 epochs are those of the 40-epoch run after
20) reports, on held-out images:

- the tangent overlap ``|B_learned^T B_exact|_F^2 / min(latent, k_true)``
  (``metrics.subspace_overlap``; 1 = the smaller space lies in the larger one, a random
  subspace scores ``max(latent, k_true) / D``): below the true dimension it is the share
  of the learned directions that are tangent, above it the share of the true tangent
  space the learned one captures;
- the reconstruction error ``mean (dec(enc(x)) - x)^2`` per pixel, and the mean
  squared pixel value for scale;
- the training time so far (seconds, on this machine and its current load).

    python benchmarks/measure_learned_tangents.py                # ~10 min on 2 quiet cores
    python benchmarks/measure_learned_tangents.py --latent-dims 4 --epochs 10,20,40 --n-train 8000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from manifold_lab.learned import fit_autoencoder
from manifold_lab.manifolds import RenderedShape
from manifold_lab.metrics import subspace_overlap

#: Acceptance threshold of issue 10 at latent dimension = true dimension.
MIN_OVERLAP = 0.8


def measure(n_train: int = 8000, n_test: int = 500, latent_dims=(2, 4, 8), epochs=(10, 20, 40),
            batch_size: int = 64, width: int = 32, seed: int = 0, progress: bool = False) -> list[dict]:
    """One row per (latent dimension, epochs); see the module docstring."""
    shape = RenderedShape()
    gen = torch.Generator().manual_seed(seed)
    x, _ = shape.sample_with_latent(n_train, generator=gen)
    x_test, z_test = shape.sample_with_latent(n_test, generator=gen)
    exact = shape.tangent_basis_at(z_test)
    images = shape.to_images(x)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in latent_dims:
            ckpt = Path(tmp) / f"ae_k{k}.pt"
            for e in sorted(epochs):
                start = time.perf_counter()
                ae = fit_autoencoder(images, k, epochs=e, batch_size=batch_size, width=width,
                                     seed=seed, progress=progress, checkpoint_path=ckpt, resume=True)
                overlap = subspace_overlap(ae.tangent_basis(x_test), exact)
                with torch.no_grad():
                    recon = (ae.reconstruct(x_test) - x_test).square().mean()
                rows.append({"latent_dim": k, "epochs": e, "overlap_mean": float(overlap.mean()),
                             "overlap_p10": float(overlap.quantile(0.1)), "recon_mse": float(recon),
                             "train_s": sum(h["time_s"] for h in ae.history),
                             "wall_s": time.perf_counter() - start})
                print(_row(rows[-1], shape), flush=True)
    return rows


def _row(r: dict, shape: RenderedShape) -> str:
    return (f"latent {r['latent_dim']:2d}  epochs {r['epochs']:3d}  overlap {r['overlap_mean']:.3f} "
            f"(10th pct {r['overlap_p10']:.3f}; chance "
            f"{max(r['latent_dim'], shape.intrinsic_dim) / shape.ambient_dim:.4f})  "
            f"recon MSE {r['recon_mse']:.2e}  train {r['train_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--latent-dims", default="2,4,8", help="comma-separated (default 2,4,8; true dim 4)")
    parser.add_argument("--epochs", default="10,20,40", help="comma-separated epoch counts (default 10,20,40)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    dims = [int(v) for v in args.latent_dims.split(",")]
    epochs = [int(v) for v in args.epochs.split(",")]
    shape = RenderedShape()
    print(f"RenderedShape 28x28, pose {list(shape.pose)} (true dim {shape.intrinsic_dim}), "
          f"{args.n_train} training / {args.n_test} held-out images, ConvAutoencoder width {args.width}, "
          f"batch {args.batch_size}, Adam 1e-3; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"load average {os.getloadavg()}")
    rows = measure(args.n_train, args.n_test, dims, epochs, args.batch_size, args.width, args.seed)
    at_true = [r for r in rows if r["latent_dim"] == shape.intrinsic_dim]
    if at_true:
        best = max(at_true, key=lambda r: r["epochs"])
        ok = best["overlap_mean"] >= MIN_OVERLAP
        print(f"latent = true dim {shape.intrinsic_dim}, {best['epochs']} epochs: overlap "
              f"{best['overlap_mean']:.3f} (need >= {MIN_OVERLAP}): {'PASS' if ok else 'FAIL'}; "
              f"load average {os.getloadavg()}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
