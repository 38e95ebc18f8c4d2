"""Is a learned Bayes gradient right? Measured on ``GaussianClassImages``, whose answers are exact.

Fits one class-conditional denoiser (:func:`manifold_lab.learned.fit_denoiser` with
``labels``) on 28x28 Gaussian-class images (classes share their mean up to small
bumps and differ by low-rank covariances; posterior far from 0/1), then compares, by
sigma, with the closed forms of :class:`manifold_lab.learned.ExactScore`:

- ``bayes``: the learned ``bayes_gradient(x, y, sigma) = s_sigma(x|y) - s_sigma(x)`` against the
  exact ``grad log p_sigma(y | x)`` (``y`` the true class of the clean image);
- ``cond``: the learned ``s_sigma(x | y)`` against the exact one;
- ``uncond``: the learned ``s_sigma(x)`` (the "none" class) against the exact one;

each as the mean cosine over held-out points, at **noisy** points ``x_0 + sigma eps``
(where the denoiser is trained) and at the **clean** ``x_0``. ``--compare-unconditional``
also fits today's unconditional denoiser on the same images and budget and reports
its ``uncond`` cosines (is the conditional fit's "none" score as good?).

    python benchmarks/validate_bayes_gradient.py                 # one fit, ~11 minutes at 1 thread
    python benchmarks/validate_bayes_gradient.py --compare-unconditional

Exit status 1 when a threshold of issue 20 is missed (``THRESHOLDS``).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from manifold_lab.data import GaussianClassImages
from manifold_lab.learned import ExactScore, fit_denoiser
from manifold_lab.metrics import score_cosine

#: Noise levels of the table: the thresholds' levels and the presets' sigma = 0.25.
SIGMAS = (0.1, 0.15, 0.2, 0.25, 0.4, 0.6, 1.0)
#: Issue 20's acceptance: minimal mean noisy-point cosine of the Bayes gradient for
#: sigma >= 0.2 and at sigma = 0.1, and of the class-conditional score at every sigma.
THRESHOLDS = {"bayes_sigma_ge_0.2": 0.9, "bayes_sigma_0.1": 0.75, "cond": 0.99}
#: The fit that meets every threshold (README, "Class-conditional scores and the Bayes
#: gradient"): 40,000 images (10,000 reached the class-score threshold only: Bayes 0.73 at
#: sigma 0.1, 0.81 at 0.2); about 650 CPU-s at 1 thread.
DEFAULTS = dict(n_train=40000, n_test=500, sigma_min=0.05, sigma_max=1.0, epochs=6, width=8, batch_size=64,
                class_weight=0.003, seed=0)


def cosines(score_model, exact, x0, y, sigma, generator) -> dict:
    """Mean cosines (module docstring) at noisy and clean points for one sigma."""
    noisy = x0 + sigma * torch.randn(x0.shape, generator=generator)
    row = {"sigma": sigma}
    for where, pts in (("noisy", noisy), ("clean", x0)):
        ref = pts.double()
        with torch.no_grad():
            pairs = {
                "bayes": (score_model.bayes_gradient(pts, y, sigma), exact.bayes_gradient(ref, y, sigma)),
                "cond": (score_model.score(pts, sigma, y), exact.score(ref, sigma, y)),
                "uncond": (score_model.score(pts, sigma), exact.score(ref, sigma)),
            }
        for name, (learned, truth) in pairs.items():
            row[f"{name}_{where}"] = float(score_cosine(learned.double(), truth).mean())
    return row


def measure(n_train: int = DEFAULTS["n_train"], n_test: int = DEFAULTS["n_test"],
            sigma_min: float = DEFAULTS["sigma_min"], sigma_max: float = DEFAULTS["sigma_max"],
            epochs: int = DEFAULTS["epochs"], width: int = DEFAULTS["width"],
            batch_size: int = DEFAULTS["batch_size"], class_weight: float = DEFAULTS["class_weight"],
            seed: int = DEFAULTS["seed"], sigmas=SIGMAS, compare_unconditional: bool = False,
            progress: bool = False) -> dict:
    """Fit (and optionally the unconditional baseline), then one row per sigma (module docstring)."""
    dist = GaussianClassImages((1, 28, 28), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = dist.sample(n_train, generator=gen)
    x0, y0 = dist.sample(n_test, generator=gen)
    fit = dict(sigma_min=sigma_min, sigma_max=sigma_max, epochs=epochs, width=width, batch_size=batch_size,
               seed=seed, progress=progress)
    start = time.perf_counter()
    learned = fit_denoiser(dist.to_images(x), labels=y, n_classes=dist.n_classes, class_weight=class_weight, **fit)
    out = {"fit_s": time.perf_counter() - start, "final_loss": learned.history[-1]["loss"], "model": learned}
    exact = ExactScore(dist)
    eval_gen = torch.Generator().manual_seed(seed + 1)
    out["rows"] = [cosines(learned, exact, x0, y0, s, eval_gen) for s in sigmas]
    if compare_unconditional:
        start = time.perf_counter()
        plain = fit_denoiser(dist.to_images(x), **fit)
        out["unconditional_fit_s"] = time.perf_counter() - start
        eval_gen = torch.Generator().manual_seed(seed + 1)   # the same noisy points
        for row, s in zip(out["rows"], sigmas):
            noisy = x0 + s * torch.randn(x0.shape, generator=eval_gen)
            for where, pts in (("noisy", noisy), ("clean", x0)):
                with torch.no_grad():
                    cos = score_cosine(plain.score(pts, s).double(), exact.score(pts.double(), s))
                row[f"plain_uncond_{where}"] = float(cos.mean())
    return out


def verdict(rows) -> dict:
    """The thresholds of ``THRESHOLDS`` against the rows: ``{name: (worst value, passed)}``."""
    ge = [r["bayes_noisy"] for r in rows if r["sigma"] >= 0.2 - 1e-12]
    at = [r["bayes_noisy"] for r in rows if abs(r["sigma"] - 0.1) < 1e-12]
    cond = [r["cond_noisy"] for r in rows]
    out = {}
    for name, values in (("bayes_sigma_ge_0.2", ge), ("bayes_sigma_0.1", at), ("cond", cond)):
        if values:
            out[name] = (min(values), min(values) >= THRESHOLDS[name])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key in ("n_train", "n_test", "epochs", "width", "batch_size", "seed"):
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=DEFAULTS[key])
    for key in ("sigma_min", "sigma_max", "class_weight"):
        parser.add_argument("--" + key.replace("_", "-"), type=float, default=DEFAULTS[key])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--compare-unconditional", action="store_true",
                        help="also fit the unconditional denoiser and compare its score")
    parser.add_argument("--save", help="save the fitted conditional denoiser here (.pt + .json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"GaussianClassImages 1x28x28 (seed {args.seed}), {args.n_train} training / {args.n_test} held-out "
          f"images; conditional denoiser width {args.width}, {args.epochs} epochs, batch {args.batch_size}, "
          f"class weight {args.class_weight}, sigma log-uniform in [{args.sigma_min}, {args.sigma_max}]; torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread(s), load average {os.getloadavg()}")
    r = measure(args.n_train, args.n_test, args.sigma_min, args.sigma_max, args.epochs, args.width,
                args.batch_size, args.class_weight, args.seed, compare_unconditional=args.compare_unconditional)
    print(f"conditional fit: {r['fit_s']:.0f} s, final loss {r['final_loss']:.4f}; load average {os.getloadavg()}")
    if "unconditional_fit_s" in r:
        print(f"unconditional fit (same images, budget): {r['unconditional_fit_s']:.0f} s")
    names = ["bayes", "cond", "uncond"] + (["plain_uncond"] if "unconditional_fit_s" in r else [])
    print("mean cosine with the exact answer, noisy points x0 + sigma eps / clean points x0")
    print("sigma  " + "  ".join(f"{n:>19}" for n in names))
    for row in r["rows"]:
        print(f"{row['sigma']:<6g} " + "  ".join(f"{row[n + '_noisy']:>9.4f} {row[n + '_clean']:>9.4f}"
                                                  for n in names))
    ok = True
    for name, (worst, passed) in verdict(r["rows"]).items():
        print(f"{name}: worst {worst:.4f}, need >= {THRESHOLDS[name]}: {'PASS' if passed else 'FAIL'}")
        ok &= passed
    if args.save:
        print(f"saved {r['model'].save(args.save)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
