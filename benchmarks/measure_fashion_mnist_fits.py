"""Wall-clock cost of the learned ground truth on real images: both fits on 10,000 Fashion-MNIST images.

Fits the autoencoder (tangent spaces) and the denoiser (scores) on the first
``--n-train`` Fashion-MNIST training images and reports each fit's time, the
autoencoder's held-out reconstruction error, and the denoiser's held-out error
``mean (D(x_0 + sigma eps, sigma) - x_0)^2`` beside that of the noisy input itself
(``sigma^2``), by sigma. The target of issue 10 is both fits in <= 3 minutes on 2 CPU
cores with the default settings; timings depend on the machine's load, which is
printed beside them.

    OMP_NUM_THREADS=2 python benchmarks/measure_fashion_mnist_fits.py
    python benchmarks/measure_fashion_mnist_fits.py --device cuda     # on a GPU
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from manifold_lab.datasets import load_fashion_mnist
from manifold_lab.learned import fit_autoencoder, fit_denoiser

#: Budget of issue 10 for both fits on 10,000 images, 2 CPU cores.
MAX_TOTAL_S = 180.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--ae-epochs", type=int, default=20)
    parser.add_argument("--ae-width", type=int, default=32)
    parser.add_argument("--denoiser-epochs", type=int, default=8)
    parser.add_argument("--denoiser-width", type=int, default=16)
    parser.add_argument("--sigma-min", type=float, default=0.02)
    parser.add_argument("--sigma-max", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    x, _ = load_fashion_mnist(split="train")
    x_test, _ = load_fashion_mnist(split="test")
    x, x_test = x[:args.n_train], x_test[:args.n_test].to(args.device)
    print(f"Fashion-MNIST, {x.shape[0]} training / {x_test.shape[0]} test images, device {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average {os.getloadavg()}")
    start = time.perf_counter()
    ae = fit_autoencoder(x, args.latent_dim, epochs=args.ae_epochs, width=args.ae_width, seed=args.seed,
                         device=args.device, progress=False)
    ae_s = time.perf_counter() - start
    with torch.no_grad():
        recon = float((ae.reconstruct(x_test) - x_test).square().mean())
    print(f"autoencoder: latent {args.latent_dim}, width {args.ae_width}, {args.ae_epochs} epochs, batch 128: "
          f"{ae_s:.0f} s; test reconstruction MSE {recon:.4f} per pixel (pixel variance "
          f"{float(x_test.var()):.4f})")
    start = time.perf_counter()
    den = fit_denoiser(x, sigma_min=args.sigma_min, sigma_max=args.sigma_max, epochs=args.denoiser_epochs,
                       width=args.denoiser_width, seed=args.seed, device=args.device, progress=False)
    den_s = time.perf_counter() - start
    print(f"denoiser: width {args.denoiser_width}, {args.denoiser_epochs} epochs, batch 128, sigma in "
          f"[{args.sigma_min}, {args.sigma_max}]: {den_s:.0f} s")
    gen = torch.Generator().manual_seed(args.seed + 1)
    for sigma in torch.logspace(math.log10(args.sigma_min), math.log10(args.sigma_max), 5).tolist():
        noisy = x_test + sigma * torch.randn(x_test.shape, generator=gen).to(args.device)
        with torch.no_grad():
            err = float((den.denoise(noisy, sigma) - x_test).square().mean())
        print(f"  sigma {sigma:<7.4g} denoised MSE {err:.2e}  (noisy input {sigma ** 2:.2e})")
    total = ae_s + den_s
    ok = total <= MAX_TOTAL_S
    print(f"both fits: {total:.0f} s (target <= {MAX_TOTAL_S:.0f} s on 2 CPU cores): {'PASS' if ok else 'OVER'}; "
          f"load average {os.getloadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
