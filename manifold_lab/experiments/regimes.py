"""The three regimes of robust training (paper §5), as rules on measured numbers.

docs/theory.md, "The three regimes": as robustness strength grows a model passes from

- **weak** — off-manifold noise moves it more than on-manifold noise,
  ``R_N / R_T > weak_ratio`` (default 1: Def. 1 with rho = 1);
- **bayes_aligned** — off-manifold sensitivity has collapsed while on-manifold
  sensitivity stays near the reference;
- **excessive** — on-manifold sensitivity has collapsed too:
  ``R_T / R_T^ref < excessive_on_fraction``.

The reference ``R_T^ref`` is the exact Bayes-optimal model's on-manifold
sensitivity at the same points, noise draws and sigma. The ``excessive`` rule is
checked first because in that regime both sensitivities are tiny and their
ratio is meaningless (docs/theory.md: noise augmentation at sigma = 10 gave
``R_N / R_T = 8`` with both near 1e-7); a rule on the ratio alone would call such
a flat model "weak". Thresholds are parameters; callers always report the
continuous numbers beside the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "REGIMES",
    "RegimeThresholds",
    "classify_regime",
    "relative_on_sensitivity",
]

#: Labels in the order a sweep of growing strength is expected to visit them.
REGIMES = ("weak", "bayes_aligned", "excessive")

#: Def. 1 with rho = 1: "off-manifold noise moves the model more than on-manifold noise".
DEFAULT_WEAK_RATIO = 1.0
#: On-manifold sensitivity below half the Bayes-optimal value counts as collapsed.
#: Fixed before any sweep was run (a factor-of-two loss, i.e. the tangent
#: gradient norm shrunk by sqrt(2)); change it with ``--excessive-on``.
DEFAULT_EXCESSIVE_ON_FRACTION = 0.5


@dataclass(frozen=True)
class RegimeThresholds:
    """Thresholds of the regime rules (see module docstring).

    Parameters
    ----------
    weak_ratio : float
        A model whose ``R_N / R_T`` exceeds this is ``weak``.
    excessive_on_fraction : float
        A model whose ``R_T / R_T^ref`` is below this is ``excessive``.
    """

    weak_ratio: float = DEFAULT_WEAK_RATIO
    excessive_on_fraction: float = DEFAULT_EXCESSIVE_ON_FRACTION

    def __post_init__(self) -> None:
        for name in ("weak_ratio", "excessive_on_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def relative_on_sensitivity(on: float, on_reference: float) -> float:
    """``R_T / R_T^ref``: on-manifold sensitivity relative to the reference model.

    Raises ``ValueError`` when the reference is not a finite positive number
    (a flat reference cannot anchor the rule).
    """
    if not math.isfinite(on_reference) or on_reference <= 0:
        raise ValueError(
            f"reference on-manifold sensitivity must be finite and > 0, got {on_reference!r}"
        )
    return on / on_reference


def classify_regime(
    on: float,
    off: float,
    on_reference: float,
    thresholds: RegimeThresholds = RegimeThresholds(),
) -> str:
    """Label one model ``weak``, ``bayes_aligned`` or ``excessive``.

    Parameters
    ----------
    on, off : float
        The model's ``R_T(sigma)`` and ``R_N(sigma)`` (Def. 1, mean over points).
    on_reference : float
        ``R_T(sigma)`` of the reference (Bayes-optimal) model at the same points.
    thresholds : RegimeThresholds

    Returns
    -------
    str
        ``"excessive"`` if ``on / on_reference < excessive_on_fraction``; else
        ``"weak"`` if ``off / on > weak_ratio``; else ``"bayes_aligned"``.
    """
    for name, value in (("on", on), ("off", off)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} sensitivity must be finite and >= 0, got {value!r}")
    if relative_on_sensitivity(on, on_reference) < thresholds.excessive_on_fraction:
        return "excessive"
    # on > 0 here: on / on_reference >= a positive threshold.
    if off / on > thresholds.weak_ratio:
        return "weak"
    return "bayes_aligned"
