"""A torch-free index of the presets: names, one-line descriptions, model counts.

``python -m manifold_lab.run --help``, ``--list`` and argument errors answer from
this index, so they do not import torch or matplotlib (seconds on a loaded machine).
The presets themselves are ``experiments.presets.PRESETS``; a test
(``tests/test_cli_first_contact.py``) checks that this index agrees with them, so a new
preset needs its line here too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PresetEntry", "PRESET_INDEX", "list_lines", "unknown_preset_message"]


@dataclass(frozen=True)
class PresetEntry:
    """What ``--list`` says about a preset.

    ``description`` is ``Preset.description``; ``n_models`` / ``n_models_quick`` are
    ``Preset.n_models`` of the full and quick variants; ``reference_job`` is the id of
    the extra reference model (``DataSpec.regime_reference.job``), or ``None``.
    """

    description: str
    n_models: int
    n_models_quick: int
    reference_job: str | None


#: name -> entry, in the order of ``experiments.presets.PRESETS``.
PRESET_INDEX: dict[str, PresetEntry] = {
    "toy_sphere": PresetEntry(
        "vMF mixture on a 2-sphere in R^512 (4 classes); 4 regularisers x 8 strengths",
        66, 17, "bayes_optimal"),
    "toy_subspace": PresetEntry(
        "Gaussian signal + distractor in R^256 (4 classes); 4 regularisers x 8 strengths",
        66, 17, "bayes_optimal"),
    "mnist": PresetEntry(
        "MNIST digits (--data-dir), SmallCNN (GELU); autoencoder tangents, class-conditional denoiser "
        "score and Bayes gradient; 4 regularisers x 3 strengths x 3 seeds", 39, 9, None),
    "fmnist": PresetEntry(
        "Fashion-MNIST, SmallCNN (GELU); autoencoder tangents, class-conditional denoiser score and "
        "Bayes gradient; 4 regularisers x 3 strengths", 13, 9, None),
    "fmnist_distractor": PresetEntry(
        "Fashion-MNIST signal + label-independent distractor half (56x28, a fixed glyph), SmallCNN; "
        "signal vs distractor sensitivity (Figure 5)", 9, 4, None),
    "cifar10": PresetEntry(
        "CIFAR-10 (--data-dir), ResNet-18, the paper's schedule and 30-strength grids; "
        "autoencoder tangents, denoiser or DDPM score", 121, 9, None),
}


def list_lines() -> list[str]:
    """One line per preset: ``name  description [N models + reference; --quick: M]``."""
    width = max(len(n) for n in PRESET_INDEX)
    lines = []
    for name, e in PRESET_INDEX.items():
        extra = f" + {e.reference_job}" if e.reference_job else ""
        lines.append(f"{name.ljust(width)}  {e.description} "
                     f"[{e.n_models} models{extra}; --quick: {e.n_models_quick}]")
    return lines


def unknown_preset_message(name: str) -> str:
    """The one-line refusal of a preset name that is not in the index."""
    return f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESET_INDEX))} (see --list)"
