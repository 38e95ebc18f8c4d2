"""A fully connected classifier with a smooth activation."""

from __future__ import annotations

import torch
from torch import nn

from manifold_lab._validation import check_positive_int
from manifold_lab.models._activations import make_activation
from manifold_lab.models.init import materialize

__all__ = ["MLP"]


class MLP(nn.Module):
    """``x -> logits``: ``Linear -> act -> ... -> Linear``.

    Parameters
    ----------
    in_dim : int
        Input dimension ``d``.
    n_classes : int
        Number of logits ``C`` (>= 1).
    hidden : sequence of int
        Widths of the hidden layers (may be empty: a linear model).
    activation : str
        ``"softplus"`` (default), ``"tanh"``, ``"gelu"``, ``"silu"`` or ``"relu"``.
        The default is smooth because Theorem 3.1 needs ``f`` in C².
    seed : int
        Initialisation seed (>= 0); see :mod:`manifold_lab.models.init`. The same
        arguments give the same weights in any process.

    Notes
    -----
    ``forward(x)`` takes ``x : Tensor, shape [..., d]`` and returns ``[..., C]``;
    an input ``[n, *shape]`` whose trailing dims hold ``d`` values (an image) is
    flattened to ``[n, d]`` first.
    """

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        hidden: tuple[int, ...] | list[int] = (256, 256),
        activation: str = "softplus",
        *,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_positive_int("in_dim", in_dim)
        check_positive_int("n_classes", n_classes)
        hidden = tuple(hidden)
        for i, width in enumerate(hidden):
            check_positive_int(f"hidden[{i}]", width)
        make_activation(activation)  # validate the name before building anything
        self.in_dim, self.n_classes = in_dim, n_classes
        self.hidden, self.activation, self.seed = hidden, activation, seed
        widths = (in_dim,) + hidden
        layers: list[nn.Module] = []
        with torch.device("meta"):
            for a, b in zip(widths[:-1], widths[1:]):
                layers += [nn.Linear(a, b), make_activation(activation)]
            layers.append(nn.Linear(widths[-1], n_classes))
        self.net = nn.Sequential(*layers)
        materialize(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_dim:
            if x.ndim >= 2 and x[0].numel() == self.in_dim:
                x = x.flatten(1)
            else:
                raise ValueError(
                    f"MLP expects x of shape [..., {self.in_dim}] (or [n, *shape] with "
                    f"{self.in_dim} values per example), got {list(x.shape)}"
                )
        return self.net(x)

    def config(self) -> dict:
        """JSON-able constructor arguments: ``MLP(**model.config())`` rebuilds the architecture."""
        return {"in_dim": self.in_dim, "n_classes": self.n_classes, "hidden": list(self.hidden),
                "activation": self.activation, "seed": self.seed}
