"""Every figure of a finished run, written as PNG files into the run directory.

``fig_<regulariser>.png`` and ``fig_sigma_curves.png`` (``plots``) for every run,
and the image kinds' ``fig_gallery.png`` / ``fig_distractor.png``
(``image_plots``) where the rows allow them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from manifold_lab._io import atomic_write_bytes
from manifold_lab.experiments.image_plots import image_figures
from manifold_lab.experiments.plots import figure_regulariser, figure_sigma_curves

__all__ = ["write_figures"]


def write_figures(results: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``fig_<regulariser>.png`` per regulariser and ``fig_sigma_curves.png``, and
    the image kinds' figures where the rows allow them (``image_plots``)."""
    out = Path(out_dir)
    paths = []
    figures = [(f"fig_{name}.png", figure_regulariser(results, name)) for name in results["claims"]]
    figures.append(("fig_sigma_curves.png", figure_sigma_curves(results)))
    figures.extend(image_figures(results))
    for name, fig in figures:
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        atomic_write_bytes(out / name, buf.getvalue())
        paths.append(out / name)
    return paths
