"""Input gradients of an explicitly chosen per-example scalar.

A classifier returns a vector of logits; the theory (docs/theory.md) needs a scalar
``f : R^d → R``. The choice is always explicit here:

``"logit"``
    ``z_y(x)``, the logit of class ``y``.
``"log_softmax"``
    ``log p(y|x) = z_y(x) − logsumexp(z(x))`` (the default: the quantity whose
    gradient Theorem 3.2 is about).
``"sum_logits"``
    ``Σ_c z_c(x)`` (the paper's CIFAR choice; ``y`` is ignored).
callable
    ``target(outputs [m, C], y_rows [m] or None) -> [m]``.

Calling convention shared by the metric functions: a scalar function ``f`` is
called as ``f(x)`` on a batch ``[m, ...]``; if it has the attribute
``takes_index = True`` it is called as ``f(x, index=rows)`` where ``rows[j]`` is
the index of the original point that row ``j`` perturbs. :func:`scalar_fn`
uses this to pick each point's own label inside batches that mix points.
"""

from __future__ import annotations

from typing import Callable

import torch

from manifold_lab._modes import eval_mode
from manifold_lab._validation import check_finite, check_min_ndim

__all__ = ["ScalarFn", "scalar_fn", "input_gradient", "scalar_gradient", "TARGETS"]

TARGETS = ("logit", "log_softmax", "sum_logits")


def call_scalar(f: Callable, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Evaluate ``f`` on ``x`` following the ``takes_index`` convention (module docstring)."""
    if getattr(f, "takes_index", False):
        return f(x, index=index)
    return f(x)


def _check_target(target: object) -> None:
    if callable(target):
        return
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS} or a callable (outputs, y) -> [n], got {target!r}")


def _check_labels(y: object) -> torch.Tensor | int | None:
    if y is None or (isinstance(y, int) and not isinstance(y, bool)):
        return y
    if isinstance(y, torch.Tensor) and y.ndim == 1 and not y.is_floating_point() and not y.is_complex():
        return y.long()
    raise ValueError(f"y must be None, an int class index or a 1-D integer tensor [n], got {y!r}")


class ScalarFn:
    """``f(x) -> [m]``: one explicit scalar of a classifier's outputs per example.

    Build it with :func:`scalar_fn`. The model is run in eval mode (restored
    after each call) so that examples in one batch never influence each other
    and BatchNorm statistics are never updated.
    """

    takes_index = True

    def __init__(self, model: Callable, y: torch.Tensor | int | None, target: str | Callable):
        _check_target(target)
        y = _check_labels(y)
        if y is None and target in ("logit", "log_softmax"):
            raise ValueError(
                f"target={target!r} needs the class y of each point; pass y (labels, or the "
                "predicted classes model(x).argmax(1))"
            )
        self.model, self.y, self.target = model, y, target

    def _labels(self, m: int, index: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
        y = self.y
        if y is None:
            return None
        if isinstance(y, int):
            return torch.full((m,), y, dtype=torch.long, device=device)
        if index is None:
            if y.shape[0] != m:
                raise ValueError(
                    f"y has {y.shape[0]} labels but the batch has {m} rows; pass index= to map rows to points"
                )
            return y.to(device)
        return y.to(device)[index.to(device)]

    def __call__(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        with eval_mode(self.model):
            out = self.model(x)
        return select_scalar(out, self._labels(x.shape[0], index, x.device), self.target)


def select_scalar(out: torch.Tensor, y: torch.Tensor | None, target: str | Callable) -> torch.Tensor:
    """Reduce model outputs ``[m, C]`` to the chosen per-example scalar ``[m]``."""
    m = out.shape[0]
    if callable(target):
        s = target(out, y)
    else:
        if out.ndim != 2:
            raise ValueError(
                f"target={target!r} needs model outputs of shape [n, C], got {list(out.shape)}; "
                "pass a callable target for other output shapes"
            )
        if target == "sum_logits":
            s = out.sum(1)
        else:
            if y is not None and y.numel() and (int(y.min()) < 0 or int(y.max()) >= out.shape[1]):
                raise ValueError(f"class indices y must lie in [0, {out.shape[1]}), got range "
                                 f"[{int(y.min())}, {int(y.max())}]")
            z = out if target == "logit" else torch.log_softmax(out, dim=1)
            s = z.gather(1, y.view(-1, 1)).squeeze(1)
    if not isinstance(s, torch.Tensor) or s.shape != (m,):
        shape = list(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
        raise ValueError(f"the scalar target must return shape [{m}] (one value per example), got {shape}")
    return s


def scalar_fn(model: Callable, y: torch.Tensor | int | None = None, *, target: str | Callable = "log_softmax") -> ScalarFn:
    """The per-example scalar ``f(x) -> [n]`` of a classifier, for :func:`manifold_robustness`.

    Parameters
    ----------
    model : callable
        ``model(x [m, ...]) -> outputs [m, C]`` (logits); an ``nn.Module`` is run
        in eval mode.
    y : Tensor [n] of int, int or None
        The class of each point (or one class for all). Required for
        ``"logit"`` and ``"log_softmax"``. Inside the metrics, batches mixing
        perturbations of several points pick each point's label via the
        ``takes_index`` convention (module docstring).
    target : {"logit", "log_softmax", "sum_logits"} or callable
        The scalar (module docstring).

    Returns
    -------
    ScalarFn
        ``f(x, index=None) -> [m]``.
    """
    return ScalarFn(model, y, target)


def scalar_gradient(f: Callable, x: torch.Tensor) -> torch.Tensor:
    """Gradient ``∇f(x_i)`` of a per-example scalar function at each point.

    Parameters
    ----------
    f : callable
        ``f(x [n, ...]) -> [n]`` (``takes_index`` convention honoured). Row ``i``
        of the output must depend only on row ``i`` of the input, so that one
        backward pass of ``Σ_i f(x_i)`` yields every per-example gradient.
    x : Tensor, shape [n, ...]

    Returns
    -------
    Tensor, same shape as ``x``
        Detached; no gradient is accumulated on any parameter (``autograd.grad``
        with respect to the input only).
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("x must be a floating-point torch.Tensor of shape [n, ...]")
    check_min_ndim("x", x, 1, "[n, ...]")
    check_finite("x", x)
    xr = x.detach().requires_grad_(True)
    with torch.enable_grad():
        s = call_scalar(f, xr, torch.arange(x.shape[0], device=x.device))
        if not isinstance(s, torch.Tensor) or s.shape != (x.shape[0],):
            shape = list(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise ValueError(f"f must return shape [{x.shape[0]}] (one scalar per point), got {shape}")
        if not s.requires_grad:
            return torch.zeros_like(x)
        (g,) = torch.autograd.grad(s.sum(), xr, allow_unused=True)
    return torch.zeros_like(x) if g is None else g.detach()


def input_gradient(
    model: Callable,
    x: torch.Tensor,
    y: torch.Tensor | int | None = None,
    *,
    target: str | Callable = "log_softmax",
) -> torch.Tensor:
    """Input gradient ``∇ₓ f(x)`` of an explicit per-example scalar of ``model``.

    Batched: one backward pass of ``Σ_i f(x_i)`` gives all per-example
    gradients because examples are independent. That holds only in eval mode
    — in train mode BatchNorm normalises with batch statistics, coupling the
    examples, and would also update its running averages — so the model is put
    in eval mode for the call and every submodule's mode is restored after.

    Parameters
    ----------
    model : callable
        ``model(x [n, ...]) -> outputs [n, C]``.
    x : Tensor, shape [n, ...]
        Any input shape (vectors or images).
    y : Tensor [n] of int, int or None
        Classes for ``"logit"``/``"log_softmax"``; ``None`` means the model's
        predicted class at ``x`` (``argmax`` of the clean outputs, then held
        fixed). Passed to a callable target as is.
    target : {"logit", "log_softmax", "sum_logits"} or callable
        The scalar (see the module docstring).

    Returns
    -------
    Tensor, same shape as ``x``
        Detached gradients; no ``.grad`` is left on any parameter.
    """
    _check_target(target)
    y = _check_labels(y)
    if isinstance(y, torch.Tensor) and isinstance(x, torch.Tensor) and x.ndim >= 1 \
            and y.shape[0] != x.shape[0]:
        raise ValueError(f"y has {y.shape[0]} labels but x has {x.shape[0]} points; "
                         "pass one label per point")
    if y is None and not callable(target) and target != "sum_logits":
        with torch.no_grad(), eval_mode(model):
            y = model(x).argmax(1)
    return scalar_gradient(ScalarFn(model, y, target), x)
