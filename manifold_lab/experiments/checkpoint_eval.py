"""The metric core on users' checkpoints, no training (``python -m manifold_lab.run evaluate``).

A :class:`CheckpointReference` holds the held-out images of an evaluation and
their ground truth, from pieces: labelled images, a tangent-basis function (an
autoencoder's, ``learned.AutoencoderManifold.tangent_basis``) and a
``learned.ScoreModel`` at ``score_sigma`` (the in-project denoiser or a diffusers
DDPM), with an optional map into the score model's resolution
(``learned.resolution``). Where the pieces come from per data set is
``checkpoint_data`` (CIFAR-10, ImageNet); any other :class:`~.reference.Reference`
works too (e.g. a training kind's).

:func:`evaluate_checkpoints` loads each checkpoint with
``training.load_user_checkpoint`` (``weights_only``, prefix stripping, normaliser
detection) and runs ``evaluate.evaluate_model`` on one ``EvalSet``, so every row
has every metric field of the presets' model rows (``metric_fields``) whose
``needs`` key the reference's ``EvalSet.extras`` carries, with the same names, plus
``checkpoint``, ``arch`` and how the checkpoint was read. The extras set here:
``image_shape``, ``paper_eps``, ``paper_eps_index``, ``n_directions``,
``gallery_images`` and ``curves`` (``paper_curve``, ``gallery``); ``lpips`` when LPIPS
weights were given (``score_lpips``); ``to_score_space`` and ``score_image_shape``
when the score works at another resolution. A field registered later with one of
these ``needs`` applies to evaluations without a change here. With an
``AttackSpec`` each row also carries ``robust_accuracy`` under PGD
(``experiments.robust_accuracy``) on the accuracy images. Accuracy is
measured on the first ``n_accuracy`` images of the same seeded selection whose
first ``n_points`` carry the gradient and sensitivity metrics. ``on_relative`` is
null: evaluation has no regime reference.

Run directory (``--out``): ``evaluate.json`` (the configuration, written first:
it marks the directory as an evaluation's), ``reference/`` (the cached fits),
``models.csv``, ``robustness_curves.csv``, ``summary.txt``, ``fig_gallery.png`` (the
checkpoints' input gradients beside the images and the reference score, drawn by
``image_plots.figure_gallery``) and, last,
``results.json``; every file is written atomically. A non-empty directory without
``evaluate.json`` is refused, so no file the command did not write is replaced; a
rerun into an evaluation directory removes the earlier reports before any work.
"""

from __future__ import annotations

import io
import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from manifold_lab._io import atomic_write_bytes
from manifold_lab.experiments.evaluate import evaluate_model, make_eval_set
from manifold_lab.experiments.image_plots import figure_gallery
from manifold_lab.experiments.metric_fields import metric_fields, paper_curve
from manifold_lab.experiments.robust_accuracy import AttackSpec, robust_accuracy
from manifold_lab.experiments.kinds.images import PAPER_SCORE_SIGMA, noise_averaged_score
from manifold_lab.experiments.specs import EvalSpec
from manifold_lab.experiments.reference import Reference
from manifold_lab.experiments.reports import (
    atomic_write_json, atomic_write_text, csv_text, curves_csv_text, format_cell, present_fields, read_json,
)
from manifold_lab.experiments.rundir import RunDirError, check_out_path
from manifold_lab.learned import ScoreModel
from manifold_lab.training import load_user_checkpoint

__all__ = ["CheckpointReference", "eval_spec", "check_checkpoints", "evaluate_checkpoints",
           "check_eval_dir", "write_marker", "write_results", "summary_text", "SCHEMA", "SCHEMA_VERSION", "MARKER_FILE",
           "SIGMA", "SIGMAS"]

SCHEMA = "manifold_lab.evaluate"
SCHEMA_VERSION = 1
#: Written first into the run directory; marks it as an evaluation's.
MARKER_FILE = "evaluate.json"
RESULTS_FILE = "results.json"
#: Def. 1 noise scale per pixel of images in [0, 1] and the curve, as the image presets
#: (a tenth of the pixel range; the curve spans 0.01 ... 1).
SIGMA = 0.1
SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0)
#: Columns of ``models.csv`` before and after the metric fields.
_CSV_HEAD = ("id", "checkpoint", "arch", "normalization_source")
_CSV_TAIL = ("eval_s",)
#: Columns of a row evaluated under an attack (after the metric fields).
ATTACK_COLUMNS = ("attack", "attack_eps", "attack_steps", "robust_accuracy")
#: Held-out images in the gradient gallery (as the image presets).
GALLERY_IMAGES = 6
#: Significant digits of the gallery cells kept in rows (figures only; as ``metric_fields.gallery_curve``).
_GALLERY_DIGITS = 4


def gallery_curve(m) -> dict:
    """The first ``extras["gallery_images"]`` images, the reference score and the input gradient, all in the
    score's space (the ImageNet images downsampled as the gradients are), in ``metric_fields.gallery_curve``'s
    format ``{"shape", "images", "score", "gradient", "gradient_sum_logits", "paper_score"}`` (so
    ``image_plots.figure_gallery`` draws both protocols)."""
    extras = m.es.extras
    n = min(extras["gallery_images"], m.es.x.shape[0])
    images = m.es.x[:n]
    if "to_score_space" in extras:
        images = extras["to_score_space"](images)
    shape = list(extras.get("score_image_shape", extras["image_shape"]))

    def rows(t):
        return [[float(f"{v:.{_GALLERY_DIGITS}g}") for v in r] for r in t[:n].reshape(n, -1).double().tolist()]
    return {"shape": shape, "images": rows(images), "score": rows(m.es.score), "gradient": rows(m.score_grad),
            "gradient_sum_logits": rows(m.score_grad_sum_logits), "paper_score": rows(extras["paper_score"])}


def eval_spec(n_points: int, n_accuracy: int, n_samples: int) -> EvalSpec:
    """The ``EvalSpec`` of an evaluation (no Theorem 3.1 table: its fields are unused)."""
    return EvalSpec(n_points=n_points, n_accuracy=n_accuracy, sigma=SIGMA, sigmas=SIGMAS, n_samples=n_samples,
                    theorem_sigmas=(SIGMA,), theorem_points=0, theorem_samples=0)


#: Noisy copies the noise-averaged score is averaged over (as the image presets).
SCORE_DRAWS = 8


class CheckpointReference(Reference):
    """Held-out images with learned tangents and score, for evaluation only.

    Parameters
    ----------
    images : Tensor, shape [N, c, h, w]
        A seeded selection of test images in [0, 1] (the first ``n`` are the
        ``n`` evaluated points and accuracy images).
    labels : Tensor, shape [N]
    tangent_basis : callable
        ``[n, c, h, w] -> [n, c h w, k]`` orthonormal bases.
    score : ScoreModel
        Takes images at ``score_image_shape``.
    score_sigma : float
        Noise level of the score (pixel scale [0, 1]).
    to_score_space : callable, optional
        ``[n, c, h, w] -> [n, c', h', w']``: the images (and, through
        ``EvalSet.extras``, the input gradients) at the score's resolution;
        ``None``: the same resolution.
    paper_eps : sequence of float
        Steps of the paper's unit-direction robustness (the documented one second).
    n_directions : int
    report : dict
        Quality figures of the fits (``results.json`` ``reference_fits``).
    lpips : nn.Module, optional
        A loaded ``metrics.lpips.LPIPSAlexNet`` (adds ``score_lpips``).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *,
                 tangent_basis: Callable[[torch.Tensor], torch.Tensor], score: ScoreModel, score_sigma: float,
                 to_score_space: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 paper_eps: Sequence[float], n_directions: int, report: dict | None = None,
                 lpips: torch.nn.Module | None = None) -> None:
        if images.ndim != 4 or labels.shape != images.shape[:1]:
            raise ValueError(f"images must be [N, c, h, w] with labels [N], got {list(images.shape)} "
                             f"and {list(labels.shape)}")
        self.images, self.labels = images, labels
        self._tangents, self.score, self.score_sigma = tangent_basis, score, float(score_sigma)
        self._to_score = to_score_space
        self.paper_eps, self.n_directions = tuple(float(e) for e in paper_eps), int(n_directions)
        self.report = dict(report or {})
        self.lpips = lpips
        shape = tuple(self._score_images(images[:1]).shape[1:])
        if shape != tuple(score.image_shape):
            raise ValueError(f"the score model takes {list(score.image_shape)} images, the evaluated images "
                             f"reach it as {list(shape)}")

    def _score_images(self, x: torch.Tensor) -> torch.Tensor:
        return x if self._to_score is None else self._to_score(x)

    def _first(self, n: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        if n > self.images.shape[0]:
            raise ValueError(f"{what}: asked for {n} images but only {self.images.shape[0]} were loaded")
        return self.images[:n], self.labels[:n]

    def training_data(self, n, *, generator):
        raise ValueError("an evaluation reference has no training data (evaluation only)")

    def eval_points(self, n, *, generator):
        return self._first(n, "--n-points")

    def accuracy_points(self, n, *, generator):
        return self._first(n, "--n-accuracy")

    def tangent_basis(self, x):
        return self._tangents(x).detach()

    def reference_gradients(self, x, y):
        with torch.no_grad():
            return self.score.score(self._score_images(x), self.score_sigma).detach(), None

    def fit_report(self):
        return {**self.report, "score_sigma": self.score_sigma, "paper_eps": list(self.paper_eps)}

    def eval_extras(self, x, y, *, device="cpu", dtype=torch.float32):
        extras = {"image_shape": tuple(x.shape[1:]), "paper_eps": self.paper_eps, "paper_eps_index": 1,
                  "n_directions": self.n_directions, "gallery_images": GALLERY_IMAGES,
                  "curves": {"paper_curve": paper_curve, "gallery": gallery_curve}}
        if self.lpips is not None:
            extras["lpips"] = self.lpips
        # The paper's protocol (sum-of-logits gradient vs the score at sigma 0.25 on [0, 1]) and
        # the noise-averaged score, as the image kinds measure them (kinds/images.py).
        with torch.no_grad():
            extras["paper_score"] = self.score.score(self._score_images(x), PAPER_SCORE_SIGMA).detach().to(
                device, dtype)
        extras["avg_score"] = noise_averaged_score(self.score, self._score_images(x), self.score_sigma,
                                                   n_draws=SCORE_DRAWS, seed=0).to(device, dtype)
        if self._to_score is not None:
            shape, to_score = tuple(x.shape[1:]), self._to_score
            extras["to_score_space"] = lambda g: to_score(g.reshape(g.shape[0], *shape))
            extras["score_image_shape"] = tuple(self.score.image_shape)
        return extras


def _describe(ck, path) -> dict:
    norm = ck.normalization
    return {"checkpoint": str(path), "normalization_source": ck.normalization_source,
            "normalization": None if norm is None else {"mean": norm[0], "std": norm[1]},
            "clamp": ck.clamp, "layout": ck.layout or {}, "stripped_prefix": ck.stripped_prefix}


def check_checkpoints(paths: Sequence[str | os.PathLike], arch: str, *, n_classes: int | None,
                      normalization, allow_code: bool, clamp: bool | None = None) -> list[dict]:
    """Load every checkpoint once (before any work), so a bad one is an error up front.

    Returns how each was read (:func:`_describe`); raises ``CheckpointError`` /
    ``ValueError`` (one line, naming the file).
    """
    infos = []
    for path in paths:
        ck = load_user_checkpoint(path, arch, n_classes=n_classes, normalization=normalization,
                                  allow_code=allow_code, clamp=clamp)
        infos.append(_describe(ck, path))
        del ck
    return infos


def evaluate_checkpoints(paths: Sequence[str | os.PathLike], arch: str, reference: Reference, spec: EvalSpec,
                         *, n_classes: int | None, normalization="auto", allow_code: bool = False,
                         clamp: bool | None = None, attack: AttackSpec | None = None,
                         device: str = "cpu", seed: int = 0,
                         progress: Callable[[str], None] | None = None) -> list[dict]:
    """One row per checkpoint: every model field of ``metric_fields`` on one ``EvalSet``.

    Parameters
    ----------
    paths : sequence of path-like
    arch : str
        ``models.ARCHITECTURES`` name or a ``training.zoo_entries`` name.
    reference : Reference
        Points, tangent bases and score (e.g. a :class:`CheckpointReference`).
    spec : EvalSpec
    n_classes, normalization, allow_code, clamp
        As for ``training.load_user_checkpoint``.
    attack : AttackSpec, optional
        Also measure ``robust_accuracy`` under this PGD attack on the accuracy images.
    device : str
    seed : int
        Noise seed (the same draws for every checkpoint: common random numbers).
    progress : callable, optional
        Gets one line per finished checkpoint.
    """
    es = make_eval_set(reference, spec, seed=seed, device=device, float64=False)
    rows = []
    for i, path in enumerate(paths):
        t0 = time.perf_counter()
        ck = load_user_checkpoint(path, arch, n_classes=n_classes, normalization=normalization,
                                  allow_code=allow_code, clamp=clamp)
        model = ck.model.to(device)
        with torch.no_grad():
            classes = int(model(es.x[:1]).shape[-1])
        if int(es.y.max()) >= classes or int(es.y_acc.max()) >= classes:
            raise ValueError(f"checkpoint {path} has {classes} outputs but the labels reach "
                             f"{int(max(es.y.max(), es.y_acc.max()))}; check --n-classes and the data")
        row = {"id": f"checkpoint_{i}", "arch": ck.arch, **_describe(ck, path), "n_classes": classes}
        row.update(evaluate_model(model, es, spec, seed=seed))
        row["on_relative"] = math.nan  # no regime reference in an evaluation
        if attack is not None:
            x_acc = es.x_acc.reshape(es.x_acc.shape[0], *es.extras["image_shape"])
            row.update(attack=attack.name, attack_eps=attack.eps, attack_steps=attack.steps,
                       robust_accuracy=robust_accuracy(model, x_acc, es.y_acc, attack))
        row["eval_s"] = time.perf_counter() - t0
        rows.append(row)
        if progress is not None:
            robust = f"robust accuracy {row['robust_accuracy']:.3f}, " if attack is not None else ""
            progress(f"[{i + 1}/{len(paths)}] {path}: accuracy {row['accuracy']:.3f}, {robust}"
                     f"R_N/R_T {row['off_on_ratio']:.3g}, score cosine {row['score_cosine']:.3f} "
                     f"({row['eval_s']:.1f} s)")
        del model, ck
    return rows


def check_eval_dir(out: str | os.PathLike) -> Path:
    """``out`` as a ``Path`` that an evaluation may write (nothing is created here).

    Accepted: a new or empty directory, or one holding ``evaluate.json`` (an earlier
    evaluation's, rerun: its results are replaced, matching cached fits reused).
    ``RunDirError`` otherwise (an empty path, a file, a non-empty other directory).
    """
    path = check_out_path(out)
    if not path.is_dir() or not any(path.iterdir()):
        return path
    marker = path / MARKER_FILE
    try:
        ok = marker.is_file() and read_json(marker).get("schema") == SCHEMA
    except (OSError, ValueError, AttributeError):
        ok = False
    if not ok:
        names = sorted(p.name for p in path.iterdir())
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise RunDirError(f"--out {out} is a non-empty directory that is not an evaluation's (it holds "
                          f"{shown} and no {MARKER_FILE}); give a new or empty directory")
    return path


#: The gradient gallery figure (``write_results``; rows with a ``gallery`` curve).
GALLERY_FILE = "fig_gallery.png"
#: The reports of an evaluation (``write_results``), ``results.json`` last.
REPORT_FILES = ("models.csv", "robustness_curves.csv", "summary.txt", GALLERY_FILE, RESULTS_FILE)


def write_marker(out: Path, config: dict) -> None:
    """Create ``out`` and write ``evaluate.json`` (the configuration) into it.

    The reports of an earlier evaluation in ``out`` are removed first (``results.json``
    first), so a rerun that fails never leaves the old configuration's results beside
    the new ``evaluate.json``; the cached fits in ``reference/`` are kept.
    """
    out.mkdir(parents=True, exist_ok=True)
    for name in reversed(REPORT_FILES):
        (out / name).unlink(missing_ok=True)
    atomic_write_json(out / MARKER_FILE, {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "config": config})


def _csv_columns(rows: Sequence[dict]) -> tuple[str, ...]:
    attacked = ATTACK_COLUMNS if any("robust_accuracy" in r for r in rows) else ()
    return (*_CSV_HEAD, *present_fields(rows), *attacked, *_CSV_TAIL)


def summary_text(rows: Sequence[dict]) -> str:
    """A fixed-width table: one line per checkpoint, the model fields that have a header
    (regime fields such as ``on_relative`` are null in an evaluation and left out)."""
    present = set(present_fields(rows))
    columns = [("checkpoint", "checkpoint", "{}")] + [
        (f.header, f.name, f.fmt) for f in metric_fields()
        if f.header is not None and f.compute is not None and f.name in present]
    if any("robust_accuracy" in r for r in rows):
        r0 = next(r for r in rows if "robust_accuracy" in r)
        columns.insert(2, (f"{r0['attack']} eps={r0['attack_eps']:.4g} acc", "robust_accuracy", "{:.3f}"))

    cells = [[format_cell(fmt, Path(r[key]).name if key == "checkpoint" else r.get(key)) for _, key, fmt in columns]
             for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (h, _, _) in enumerate(columns)]

    def join(values):
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    lines = [join([h for h, _, _ in columns]), "  ".join("-" * w for w in widths)]
    return "\n".join([*lines, *(join(c) for c in cells)])


def gallery_figure(results: dict):
    """``image_plots.figure_gallery`` of the checkpoints (a row per checkpoint, labelled with its file
    name, its number and its score cosine), or ``None`` when no row has a ``gallery``."""
    rows = [{"seed": 0, "regularizer": Path(r["checkpoint"]).name, "strength": i,
             "regime": f"score cosine {r['score_cosine']:.3f}", "gallery": r["gallery"]}
            for i, r in enumerate(results["models"]) if "gallery" in r]
    if not rows:
        return None
    return figure_gallery({"models": rows, "claims": [], "preset": f"evaluate {results['config']['dataset']}"})


def write_results(out: Path, results: dict) -> None:
    """``models.csv``, ``robustness_curves.csv``, ``summary.txt``, ``fig_gallery.png``, then ``results.json``
    (atomically each)."""
    rows = results["models"]
    texts = {"models.csv": csv_text(rows, _csv_columns(rows)), "robustness_curves.csv": curves_csv_text(rows, identity=("id", "checkpoint")),
             "summary.txt": summary_text(rows) + "\n"}
    for name in ("models.csv", "robustness_curves.csv", "summary.txt"):
        atomic_write_text(out / name, texts[name])
    fig = gallery_figure(results)
    if fig is not None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        atomic_write_bytes(out / GALLERY_FILE, buf.getvalue())
    atomic_write_json(out / RESULTS_FILE, results)

