"""LPIPS-AlexNet (Zhang et al. 2018), the paper's perceptual metric, from local weight files.

The ``lpips`` package builds its network with torchvision, which a CPU-only torch
install often cannot import; this module re-implements its forward pass exactly
(v0.1, AlexNet, ``lpips=True``, no spatial output) on a minimal AlexNet feature
extractor whose ``state_dict`` keys are torchvision's (``features.0.weight`` ...),
and reads the two weight files the package would:

- the backbone: torchvision's ImageNet AlexNet, ``alexnet-owt-7be5be79.pth``, from a
  path you give or the torch hub cache (``torch.hub.get_dir()/checkpoints``);
- the linear layers: ``lpips/weights/v0.1/alex.pth`` (keys ``lin{0..4}.model.1.weight``,
  shapes ``[1, C_l, 1, 1]``), from a path you give or the installed ``lpips`` package
  (located without importing it).

Nothing is downloaded. The distance, for inputs in ``[-1, 1]`` scaled by
``(x - shift) / scale`` and AlexNet ReLU features ``f_l`` (l = 1..5),

    LPIPS(x, y) = sum_l mean_{h,w} sum_c w_lc (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|)_c^2,

with the norms over channels (``+ 1e-10``). At 28-32 px input AlexNet's relu1..5 maps
are 7, 3, 1, 1, 1 pixels wide (15, 7, 3, 3, 3 at 64 px): pass ``upsample_to``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["LPIPSAlexNet", "AlexNetFeatures", "ALEXNET_FILE", "LPIPS_LINEAR_FILE", "default_backbone_path",
           "default_linear_path", "weight_files_in"]

#: torchvision's AlexNet ImageNet weights (the torch hub cache name).
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
#: The lpips package's linear-layer weights for AlexNet, relative to the package folder.
LPIPS_LINEAR_FILE = Path("weights") / "v0.1" / "alex.pth"
#: ``ScalingLayer`` constants of lpips v0.1 (ImageNet statistics mapped to [-1, 1] inputs).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
#: Channels of AlexNet's relu1..relu5 features.
CHANNELS = (64, 192, 384, 256, 256)
#: Indices (in torchvision's ``features``) of the ReLUs LPIPS taps.
TAPS = (1, 4, 7, 9, 11)
NORM_EPS = 1e-10


class AlexNetFeatures(nn.Module):
    """torchvision's ``alexnet().features`` (same layers, same ``features.<i>`` keys), ReLUs tapped."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                taps.append(x)
        return taps


def default_backbone_path() -> Path:
    """``torch.hub.get_dir()/checkpoints/alexnet-owt-7be5be79.pth`` (where torchvision caches it)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def default_linear_path() -> Path | None:
    """``<lpips package>/weights/v0.1/alex.pth`` if the package is installed (not imported), else None."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / LPIPS_LINEAR_FILE


def weight_files_in(folder: str | os.PathLike) -> tuple[Path, Path]:
    """The two weight files in one folder: ``(folder/alexnet-owt-7be5be79.pth, folder/alex.pth)``
    (the linear weights may also sit at ``folder/weights/v0.1/alex.pth``, the lpips
    package's layout). A missing file is a one-line ``FileNotFoundError`` naming it."""
    folder = Path(folder)
    backbone = folder / ALEXNET_FILE
    if not backbone.is_file():
        raise FileNotFoundError(f"LPIPS backbone weights {backbone} not found; copy torchvision's {ALEXNET_FILE} "
                                f"(torch hub cache) into {folder}")
    for linear in (folder / LPIPS_LINEAR_FILE.name, folder / LPIPS_LINEAR_FILE):
        if linear.is_file():
            return backbone, linear
    raise FileNotFoundError(f"LPIPS linear-layer weights {folder / LPIPS_LINEAR_FILE.name} not found; copy the "
                            f"lpips package's {LPIPS_LINEAR_FILE} into {folder}")


def _load_state(path: Path, what: str, how: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"LPIPS {what} weights {path} not found; {how}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means a bad file to the user
        raise ValueError(f"LPIPS {what} weights {path} are unreadable ({type(exc).__name__}); {how}") from None
    if not isinstance(state, dict):
        raise ValueError(f"LPIPS {what} weights {path} are not a state_dict; {how}")
    return state


class LPIPSAlexNet(nn.Module):
    """``forward(x, y) -> [n]``: LPIPS v0.1 with AlexNet (module docstring), inputs ``[n, 3, h, w]`` in [-1, 1].

    Parameters
    ----------
    backbone_path : path-like, optional
        torchvision AlexNet ``state_dict`` (``features.*`` keys used). Default:
        :func:`default_backbone_path`.
    linear_path : path-like, optional
        lpips' ``alex.pth``. Default: :func:`default_linear_path`.

    Raises
    ------
    FileNotFoundError
        A weight file is missing (one line naming it and where to get it).
    ValueError
        A weight file is unreadable or does not fit.
    """

    def __init__(self, backbone_path: str | os.PathLike | None = None,
                 linear_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.net = AlexNetFeatures()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        backbone = Path(backbone_path) if backbone_path is not None else default_backbone_path()
        state = _load_state(backbone, "backbone", f"put torchvision's {ALEXNET_FILE} there (or pass backbone_path=)")
        features = {k: v for k, v in state.items() if k.startswith("features.")}
        self._fill(self.net, features, backbone)
        linear = Path(linear_path) if linear_path is not None else default_linear_path()
        how = "pip install lpips (its weights/v0.1/alex.pth) or pass linear_path="
        if linear is None:
            raise FileNotFoundError(f"LPIPS linear-layer weights ({LPIPS_LINEAR_FILE}) not found: the lpips "
                                    f"package is not installed; {how}")
        lin_state = _load_state(linear, "linear-layer", how)
        lin = {f"{i}.weight": lin_state.get(f"lin{i}.model.1.weight", lin_state.get(f"lin{i}.model.0.weight"))
               for i in range(len(CHANNELS))}
        if any(v is None for v in lin.values()):
            raise ValueError(f"LPIPS linear-layer weights {linear} lack lin0..lin4 ('lin<i>.model.1.weight'); {how}")
        self._fill(self.lins, lin, linear)
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None])
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _fill(module: nn.Module, state: dict, path: Path) -> None:
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            lines = str(exc).strip().splitlines()
            detail = lines[1].strip() if len(lines) > 1 else lines[0]
            raise ValueError(f"LPIPS weights {path} do not fit AlexNet/LPIPS: {detail}") from None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.net((x - self.shift) / self.scale), self.net((y - self.shift) / self.scale)
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for lin, a, b in zip(self.lins, fx, fy):
            a = a / (a.square().sum(1, keepdim=True).sqrt() + NORM_EPS)
            b = b / (b.square().sum(1, keepdim=True).sqrt() + NORM_EPS)
            total = total + lin((a - b).square()).mean((1, 2, 3))
        return total
