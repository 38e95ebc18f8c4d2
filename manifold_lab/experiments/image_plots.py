"""Figures of the image kinds: the gradient gallery (Figure 1) and Figure 5.

- ``fig_gallery.png`` (rows with a ``gallery`` entry): for a few fixed test
  images, two blocks side by side, the gradient of ``log p(y|x)`` (ours) and of
  the sum of logits (the paper's released protocol); in each, the first row is
  the images, the second the learned score it is compared with (and, with a
  class-conditional denoiser, the learned Bayes gradient in the first block), then one row
  per model (seed 0: the unregularised model, then every strength of each
  regulariser), labelled with regulariser, strength, regime and accuracy; every
  cell is divided by its own max-abs value and drawn on one [-1, 1] colour scale,
  shown by the colour bar.
- ``fig_distractor.png`` (rows with a ``half_curve``): the ratio signal /
  distractor sensitivity against the noise std, the unregularised model and
  every robust model (seed 0), the paper's Figure 5.
"""

from __future__ import annotations

import math

import torch

from manifold_lab.experiments.plots import new_figure
from manifold_lab.metrics.perceptual import normalize_images

__all__ = ["figure_gallery", "figure_distractor", "image_figures"]

_CELL = 0.85  # inches per gallery cell
_LABEL_WIDTH = 2.2  # inches for the row labels
_GAP = 0.35  # inches between the two gradient blocks
_TOP = 0.75  # inches above the cells: title and block headers
_BOTTOM = 0.55  # inches below the cells: the colour bar


def _seed0_rows(results: dict, key: str) -> list[dict]:
    rows = [r for r in results["models"] if key in r]
    if not rows:
        return []
    seed0 = min(r["seed"] for r in rows)
    rows = [r for r in rows if r["seed"] == seed0]
    order = {"none": -1, **{name: i for i, name in enumerate(results["claims"])}}
    return sorted(rows, key=lambda r: (order.get(r["regularizer"], len(order)), r["strength"]))


def _cells(values: list[list[float]], shape: list[int]) -> torch.Tensor:
    """``[n, D]`` lists -> ``[n, h, w]`` images, each max-abs normalised (first channel)."""
    t = torch.tensor(values, dtype=torch.float64).reshape(len(values), *shape)
    return normalize_images(t, "max_abs")[:, 0]


def _row_label(r: dict) -> str:
    label = "unregularised" if r["regularizer"] == "none" else f"{r['regularizer']} {r['strength']:g}"
    acc = r.get("accuracy")
    acc_text = "" if acc is None else f", acc {acc:.2f}"
    return f"{label}\n({r.get('regime', '?')}{acc_text})"


def figure_gallery(results: dict):
    """The gradient gallery, or ``None`` when no row has a ``gallery``.

    Two blocks side by side over the same test images: on the left the gradient
    of ``log p(y|x)`` (ours), on the right the gradient of the sum of logits (the
    paper's released protocol); rows are the images, the score each block is
    compared with, then one row per model (seed 0; every strength of every
    regulariser). Every gradient or score cell is divided by its own max-abs value
    and drawn on one [-1, 1] colour scale (the bar at the bottom).
    """
    rows = _seed0_rows(results, "gallery")
    if not rows:
        return None
    g0 = rows[0]["gallery"]
    shape, n = g0["shape"], len(g0["images"])
    sigmas = results.get("reference_fits") or {}
    ours_sigma, paper_sigma = sigmas.get("score_sigma"), sigmas.get("paper_score_sigma")
    both = "gradient_sum_logits" in g0
    images = torch.tensor(g0["images"]).reshape(n, *shape)[:, 0]
    blocks = [("ours", "gradient", "score", ours_sigma)]
    if both:
        blocks.append(("paper", "gradient_sum_logits", "paper_score" if "paper_score" in g0 else "score",
                       paper_sigma if "paper_score" in g0 else ours_sigma))
    lines = [("test images", [(images, "gray", (0, 1))] * len(blocks))]
    lines.append(("learned score", [(_cells(g0[key], shape), "bwr", (-1, 1)) for _, _, key, _ in blocks]))
    if "bayes_grad" in g0:
        # The learned Bayes gradient grad log p_sigma(y|x) is a gradient of log p(y|x): ours only.
        lines.append(("learned Bayes\ngradient", [(_cells(g0["bayes_grad"], shape), "bwr", (-1, 1))]
                      + [None] * (len(blocks) - 1)))
    for r in rows:
        lines.append((_row_label(r), [(_cells(r["gallery"][grad], shape), "bwr", (-1, 1))
                                      for _, grad, _, _ in blocks]))
    aspect = shape[1] / shape[2]
    cell_h = _CELL * aspect
    width = _LABEL_WIDTH + len(blocks) * n * _CELL + (len(blocks) - 1) * _GAP + 0.1
    height = _TOP + len(lines) * cell_h * 1.04 + _BOTTOM
    fig = new_figure(width, height)
    image = None
    for b, (name, grad_key, score_key, sigma) in enumerate(blocks):
        left = _LABEL_WIDTH + b * (n * _CELL + _GAP)
        axes = fig.subplots(len(lines), n, squeeze=False, gridspec_kw=dict(
            left=left / width, right=(left + n * _CELL) / width, top=1 - _TOP / height,
            bottom=_BOTTOM / height, hspace=0.04, wspace=0.04))
        for i, (label, per_block) in enumerate(lines):
            if per_block[b] is None:
                for j in range(n):
                    axes[i][j].set_axis_off()
                continue
            cells, cmap, (lo, hi) = per_block[b]
            for j in range(n):
                ax = axes[i][j]
                image_ij = ax.imshow(cells[j].numpy(), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
                if cmap == "bwr":
                    image = image_ij
                ax.set_xticks([])
                ax.set_yticks([])
            if b == 0:
                axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
        sigma_text = "" if sigma is None else f" vs score at $\\sigma$={sigma:g}"
        what = (r"$\nabla_x \log p(y|x)$" if grad_key == "gradient" else r"$\nabla_x \sum_c z_c(x)$ (paper's code)")
        fig.text((left + n * _CELL / 2) / width, 1 - (_TOP - 0.08) / height, what + sigma_text,
                 ha="center", va="bottom", fontsize=8)
    fig.text(0.5, 1 - 0.08 / height, f"{results['preset']}: input gradients of the seed-0 models at "
             f"{n} test images", ha="center", va="top", fontsize=10)
    cax = fig.add_axes([_LABEL_WIDTH / width, 0.18 / height, min(3.0, width - _LABEL_WIDTH - 0.2) / width,
                        0.12 / height])
    bar = fig.colorbar(image, cax=cax, orientation="horizontal")
    bar.set_label("value / max |value| of each cell (red > 0, blue < 0)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    return fig


def figure_distractor(results: dict):
    """Signal / distractor sensitivity ratio vs sigma, or ``None`` without ``half_curve`` rows."""
    rows = _seed0_rows(results, "half_curve")
    if not rows:
        return None
    fig = new_figure(6.5, 4.2)
    ax = fig.subplots(1, 1, gridspec_kw=dict(left=0.12, right=0.70, bottom=0.13, top=0.9))
    for r in rows:
        c = r["half_curve"]
        ratio = [s / d if d and d > 0 else math.nan for s, d in zip(c["signal"], c["distractor"])]
        standard = r["regularizer"] == "none"
        label = "standard" if standard else f"{r['regularizer']} {r['strength']:g}"
        ax.plot(c["sigmas"], ratio, marker="o", ms=3, lw=2.5 if standard else 1.2,
                color="black" if standard else None, label=label)
    ax.axhline(1.0, color="gray", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"noise std $\sigma$ on one half")
    ax.set_ylabel("signal / distractor sensitivity")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title(f"{results['preset']}: softmax-L1 change, noise on one half (seed 0)", fontsize=9)
    return fig


def image_figures(results: dict) -> list[tuple[str, object]]:
    """``(file name, figure)`` of every image figure this run's rows allow."""
    out = []
    for name, make in (("fig_gallery.png", figure_gallery), ("fig_distractor.png", figure_distractor)):
        fig = make(results)
        if fig is not None:
            out.append((name, fig))
    return out
