"""Input checks shared by every layer.

Each check raises a one-line ``ValueError`` that names the argument, says what
was expected and what was received, so a user can fix the call without reading
a traceback.
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = [
    "check_class_labels",
    "check_finite",
    "check_float_dtype",
    "check_last_dim",
    "check_min_ndim",
    "check_positive",
    "check_positive_int",
    "check_generator",
]


def check_finite(name: str, t: torch.Tensor) -> torch.Tensor:
    """Raise ``ValueError`` if ``t`` holds NaN or inf; return ``t`` unchanged."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            raise ValueError(
                f"{name} contains {int(bad.sum())} NaN/inf value(s) out of {t.numel()}; "
                "pass finite values"
            )
    return t


def check_min_ndim(name: str, t: torch.Tensor, ndim: int, shape_hint: str) -> torch.Tensor:
    """Raise ``ValueError`` unless ``t.ndim >= ndim``; ``shape_hint`` e.g. ``"[..., d]"``."""
    if t.ndim < ndim:
        raise ValueError(f"{name} must have shape {shape_hint}, got shape {list(t.shape)}")
    return t


def check_last_dim(name: str, t: torch.Tensor, size: int) -> torch.Tensor:
    """Raise ``ValueError`` unless ``t`` has shape ``[..., size]``."""
    if t.ndim < 1 or t.shape[-1] != size:
        raise ValueError(
            f"{name} must have shape [..., {size}] (last dim = ambient dimension {size}), "
            f"got shape {list(t.shape)}"
        )
    return t


def check_positive(name: str, value: float | Sequence[float] | torch.Tensor) -> None:
    """Raise ``ValueError`` unless every entry of ``value`` is finite and > 0."""
    vals = torch.as_tensor(value, dtype=torch.float64).flatten()
    if vals.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    if not bool(torch.isfinite(vals).all()) or not bool((vals > 0).all()):
        raise ValueError(f"{name} must be finite and > 0, got {vals.tolist()}")


def check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    """Raise ``ValueError`` unless ``value`` is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_float_dtype(name: str, dtype: object) -> torch.dtype:
    """Raise ``ValueError`` unless ``dtype`` is a floating-point ``torch.dtype``
    (an integer dtype would silently round every sampled point)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating-point torch dtype (e.g. torch.float32), got {dtype}")
    return dtype


def check_generator(generator: torch.Generator | None, device: torch.device | str) -> None:
    """Raise ``ValueError`` if ``generator`` lives on a different device type than ``device``."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if torch.device(generator.device).type != torch.device(device).type:
        raise ValueError(
            f"generator is on {generator.device} but tensors are on {device}; "
            "create the generator with torch.Generator(device=...) on the same device"
        )


def check_image_batch(who: str, x: torch.Tensor, channels: int, size: Sequence[int] | None = None) -> None:
    """One-line ``ValueError`` unless ``x`` is an image batch ``[n, channels, h, w]``
    (``(h, w) == size`` when ``size`` is given), naming ``who`` expects it."""
    if x.ndim == 4 and x.shape[1] == channels and (size is None or tuple(x.shape[-2:]) == tuple(size)):
        return
    hw = "h, w" if size is None else ", ".join(map(str, size))
    raise ValueError(f"{who} expects x of shape [n, {channels}, {hw}], got {list(x.shape)}")


def check_class_labels(y: torch.Tensor | int, n: int, n_classes: int) -> torch.Tensor:
    """``y`` (one label or ``[n]``) as an int64 ``[n]`` tensor in ``[0, n_classes)`` on ``y``'s
    device; one-line ``ValueError`` for float/bool labels, a wrong count or a label out of range."""
    y = torch.as_tensor(y)
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    y = y.to(torch.int64)
    y = y.expand(n) if y.ndim == 0 else y
    if y.shape != (n,):
        raise ValueError(f"y must be one label or have {n} entries (one per image), got shape {list(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels y must lie in [0, {n_classes - 1}], got range [{int(y.min())}, {int(y.max())}]")
    return y
