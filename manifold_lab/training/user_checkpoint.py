"""Users' own checkpoints (RobustBench, MadryLab ``robustness``, plain ``state_dict``s) into a named architecture.

:func:`load_user_checkpoint` reads a torch file with ``torch.load(weights_only=True)``
(tensors and plain containers only: nothing in the file can run code), finds the
weights and puts them into ``models.build_architecture(arch)``:

1. **Where the weights are** — the file is a ``state_dict`` itself, or holds one
   under ``"state_dict"``, ``"model"``, ``"model_state_dict"`` or ``"net"`` (the
   first that is a dict of tensors), or ``"last"`` (RobustBench's
   ``Andriushchenko2020Understanding``). MadryLab ``robustness`` saves
   ``{"model": ..., "optimizer": ..., "schedule": ..., "epoch": ...}``; RobustBench
   files are a plain ``state_dict`` or ``{"state_dict": ...}``.
2. **Prefixes** — ``module.`` (``DataParallel``) and ``model.`` (a wrapper such as
   MadryLab's ``AttackerModel`` or RobustBench's ``normalize_model``) are stripped
   while every key carries them and the architecture has no such submodule. The
   copy of the network that MadryLab keeps for its attacker (``attacker.*``) is
   dropped.
3. **Input normalisation** — the returned model always takes inputs in [0, 1]. The
   normaliser is never guessed. ``normalization="auto"`` (default) uses normaliser
   buffers found in the checkpoint: ``normalizer.new_mean/new_std`` (MadryLab),
   ``normalize.mean/std`` (RobustBench's ``normalize_model``) or a top-level
   ``mean/std`` or ``mu/sigma`` pair that the architecture does not own (RobustBench
   classes such as ``Wong2020FastNet``); if found, the network is wrapped in
   :class:`models.Normalized` with them. If none is found, ``auto`` takes the named
   zoo entry's (``arch="cifar10/Hendrycks2019Using"``: ``training.zoo_entries``), or
   "none" for a checkpoint of this project (the in-project ``resnet18``, or a file
   with this project's JSON side file); otherwise it is a one-line
   :class:`CheckpointError` asking for ``normalization``: ``"none"`` (the network
   takes [0, 1] pixels as they are), a ``models.NORMALIZATIONS`` name (``cifar10``,
   ``imagenet``, ``half`` = ``2x − 1``) or ``(mean, std)``. An explicit value that
   contradicts buffers in the file is an error.
   ``clamp`` (default: on exactly when MadryLab's ``normalizer`` buffers were found,
   as its ``InputNormalize`` clamps) clamps inputs to [0, 1] before normalising.
4. **Fit** — missing or unexpected keys and shape mismatches are a one-line
   :class:`CheckpointError` naming a few of them.

A file that needs code to unpickle (a whole pickled ``nn.Module``, custom classes,
EDM-style pickles) is refused with a one-line error unless ``allow_code=True`` —
only for files from a source you trust, since unpickling them runs their code.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from manifold_lab.models import build_architecture
from manifold_lab.models.normalized import NORMALIZATIONS, Normalized
from manifold_lab.models.zoo_layout import layout_options
from manifold_lab.training.checkpoint import CheckpointError, config_path
from manifold_lab.training.zoo_entries import zoo_entry

__all__ = ["load_user_checkpoint", "UserCheckpoint", "read_state_dict"]

#: Keys under which model zoos nest the ``state_dict`` (tried in this order); ``last``:
#: RobustBench's ``Andriushchenko2020Understanding`` and ``Kireev2021Effectiveness_*``
#: files hold ``{"last": ..., "best": ...}`` and RobustBench loads ``last``.
STATE_KEYS = ("state_dict", "model", "model_state_dict", "net", "last")
#: Wrapper prefixes stripped while every key carries them.
PREFIXES = ("module.", "model.")
#: Sub-trees dropped: MadryLab's attacker keeps a second reference to the same network.
DROPPED = ("attacker.",)
#: Normaliser buffers: (submodule prefix, mean name, std name).
NORMALISERS = tuple((p, m, s) for p in ("normalizer.", "normalize.", "")
                    for m, s in (("new_mean", "new_std"), ("mean", "std"), ("mu", "sigma")))
#: In-project architectures: no zoo publishes them; this project trains them on [0, 1] pixels.
IN_PROJECT_ARCHS = ("resnet18",)
#: The normaliser prefix whose upstream module (MadryLab's ``InputNormalize``) clamps to [0, 1].
CLAMPING_NORMALISER = "normalizer"
#: What a user may pass as ``normalization`` (the CLI's ``--normalization`` spellings).
NORMALIZATION_CHOICES = ("none", *NORMALIZATIONS, "M1,M2,M3,S1,S2,S3")
#: How many offending keys an error message names.
_NAMED = 3
#: Tolerance when an explicit normalisation is compared with the checkpoint's.
_NORM_ATOL = 1e-6


@dataclass
class UserCheckpoint:
    """A loaded user checkpoint.

    Attributes
    ----------
    model : nn.Module
        In eval mode; takes ``[n, c, h, w]`` inputs in [0, 1].
    network : nn.Module
        The architecture with the weights (``model`` itself, or the module inside
        :class:`Normalized`).
    normalization : (list[float], list[float]) or None
        The ``(mean, std)`` applied in front of ``network``.
    normalization_source : str
        ``"argument"``, ``"argument:<name>"``, ``"checkpoint:<key prefix>"``,
        ``"zoo:<entry>"``, ``"in-project"`` or ``"none"``.
    stripped_prefix : str
        Prefixes removed from the keys (e.g. ``"module.model."``).
    arch : str
        The architecture built (the entry's, when a zoo entry was named).
    layout : dict
        Layout options read from the keys (``models.zoo_layout``), e.g. ``{"sub_block1": True}``.
    clamp : bool
        Whether inputs are clamped to [0, 1] before the normaliser.
    """

    model: nn.Module
    network: nn.Module
    normalization: tuple[list[float], list[float]] | None
    normalization_source: str
    stripped_prefix: str
    arch: str = ""
    layout: dict | None = None
    clamp: bool = False


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _global_needed(message: str) -> str | None:
    """The class/function a refused pickle references (``GLOBAL a.b.C`` in torch's message), or None."""
    for word in message.replace("`", " ").split("GLOBAL ")[1:]:
        return word.split()[0] if word.split() else "a global"
    return None


def read_state_dict(path: str | os.PathLike, *, allow_code: bool = False,
                    map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The ``state_dict`` inside a user's torch file (steps 1 of the module docstring).

    Raises
    ------
    CheckpointError
        Missing or unreadable file, a file that needs code without ``allow_code``,
        or no ``state_dict`` inside (one-line messages).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        needed = _global_needed(str(exc))
        if needed is None:  # not a class or function reference: bytes that are no pickle at all
            raise CheckpointError(f"checkpoint {path} is unreadable or truncated (not a torch file); "
                                  "check the file (re-download or re-save it)") from None
        if not allow_code:
            raise CheckpointError(
                f"checkpoint {path} needs code to load (it references {needed}); re-save it as a plain "
                "state_dict, or pass allow_code=True (--allow-code) only if you trust its source") from None
        try:
            raw = torch.load(path, map_location=map_location, weights_only=False)
        except Exception as exc2:  # whatever the pickled code raised
            raise CheckpointError(f"checkpoint {path} could not be loaded even with code allowed "
                                  f"({type(exc2).__name__}: {str(exc2)[:120]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as exc:
        # KeyError/IndexError: torch's weights-only unpickler on bytes that are no pickle (e.g. a text file)
        raise CheckpointError(f"checkpoint {path} is unreadable or truncated, or not a torch file "
                              f"({type(exc).__name__}); check the file (re-download or re-save it)") from None
    if isinstance(raw, nn.Module):
        raw = raw.state_dict()
    if _is_state_dict(raw):
        return dict(raw)
    if isinstance(raw, dict):
        for key in STATE_KEYS:
            inner = raw.get(key)
            if isinstance(inner, nn.Module):
                inner = inner.state_dict()
            if _is_state_dict(inner):
                return dict(inner)
        found = ", ".join(repr(k) for k in list(raw)[:6])
        raise CheckpointError(f"checkpoint {path} holds no state_dict (top-level keys: {found}; expected a "
                              f"state_dict or one under {', '.join(map(repr, STATE_KEYS))})")
    raise CheckpointError(f"checkpoint {path} holds a {type(raw).__name__}, not a state_dict")


def _strip_prefixes(state: dict, own_keys: set[str]) -> tuple[dict, str]:
    stripped = ""
    while True:
        state = {k: v for k, v in state.items() if not k.startswith(DROPPED)}
        body = [k for k in state if not _normaliser_key(k)]
        for prefix in PREFIXES:
            if body and all(k.startswith(prefix) for k in body) and not any(k.startswith(prefix) for k in own_keys):
                state = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
                stripped += prefix
                break
        else:
            return state, stripped


def _normaliser_key(key: str) -> bool:
    return any(key in (p + m, p + s) for p, m, s in NORMALISERS)


def _pop_normaliser(state: dict, own_keys: set[str], in_channels: int, path: Path):
    for p, m, s in NORMALISERS:
        km, ks = p + m, p + s
        if km in state and ks in state and km not in own_keys and ks not in own_keys:
            mean, std = state.pop(km).float().flatten(), state.pop(ks).float().flatten()
            if mean.numel() != in_channels or std.numel() != in_channels:
                raise CheckpointError(f"checkpoint {path}: normaliser {p or 'top-level '}{m}/{s} has "
                                      f"{mean.numel()}/{std.numel()} entries, the model has {in_channels} "
                                      "input channels")
            return (mean.tolist(), std.tolist()), p.rstrip(".") or f"{m}/{s}"
    return None, None


def _fit(network: nn.Module, state: dict, path: Path, arch: str) -> None:
    try:
        result = network.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        first = lines[0] if lines else str(exc).splitlines()[0]
        raise CheckpointError(f"checkpoint {path} does not fit --arch {arch} ({len(lines)} shape mismatch(es); "
                              f"first: {first[:200]}); check --arch and the number of classes") from None
    missing, unexpected = result.missing_keys, result.unexpected_keys
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:_NAMED])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:_NAMED])})")
        raise CheckpointError(f"checkpoint {path} does not fit --arch {arch}: keys {'; '.join(parts)}; "
                              "check --arch")


def _explicit_norm(normalization) -> tuple[tuple[list[float], list[float]] | None, str]:
    """``(norm, source)`` of an explicit ``normalization`` (anything but ``"auto"``)."""
    if normalization is None or normalization == "none":
        return None, "none"
    if isinstance(normalization, str):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization {normalization!r} is not known; use 'auto' or one of "
                             f"{', '.join(NORMALIZATION_CHOICES)}")
        mean, std = NORMALIZATIONS[normalization]
        return (list(mean), list(std)), f"argument:{normalization}"
    return ([float(v) for v in torch.as_tensor(normalization[0]).flatten()],
            [float(v) for v in torch.as_tensor(normalization[1]).flatten()]), "argument"


def _saved_by_project(path: Path, arch: str) -> bool:
    return arch in IN_PROJECT_ARCHS or config_path(path).is_file()


def _choose_norm(path: Path, arch: str, entry_name: str | None, entry_norm, normalization, found, where):
    """``(norm, source)``: step 3 of the module docstring."""
    if normalization != "auto":
        norm, source = _explicit_norm(normalization)
    elif entry_name is not None and entry_norm is not None:
        norm, source = _explicit_norm(entry_norm)
        source = f"zoo:{entry_name}"
    elif found is not None:
        return found, f"checkpoint:{where}"
    elif entry_name is not None:
        return None, f"zoo:{entry_name}"
    elif _saved_by_project(path, arch):
        return None, "in-project"
    else:
        raise CheckpointError(
            f"checkpoint {path} carries no input normaliser, so how [0, 1] pixels reach the network is unknown; "
            f"pass --normalization {'|'.join(NORMALIZATION_CHOICES)} (or a RobustBench entry as --arch, "
            "e.g. cifar10/Hendrycks2019Using)")
    if found is not None and norm is not None and not all(  # an explicit "none" drops the buffers
            torch.allclose(torch.tensor(a), torch.tensor(b), atol=_NORM_ATOL) for a, b in zip(norm, found)):
        raise CheckpointError(f"checkpoint {path} carries normalisation mean {found[0]}, std {found[1]} "
                              f"({where}), but {source} says mean {norm[0]}, std {norm[1]}; pass "
                              "--normalization auto to use the checkpoint's")
    return norm, source


def load_user_checkpoint(
    path: str | os.PathLike,
    arch: str,
    *,
    n_classes: int | None = None,
    normalization: str | tuple[Sequence[float], Sequence[float]] | None = "auto",
    clamp: bool | None = None,
    allow_code: bool = False,
    map_location: str | torch.device = "cpu",
) -> UserCheckpoint:
    """Build ``arch`` and load a user's checkpoint into it (see the module docstring).

    Parameters
    ----------
    path : path-like
        A torch file (``torch.save``).
    arch : str
        A name in ``models.ARCHITECTURES`` (``preact_resnet18``, ``wideresnet28_10``,
        ``wideresnet34_10``, ``wideresnet``, ``resnet18``, ``resnet18_imagenet``,
        ``resnet50``) or a zoo entry of ``training.zoo_entries`` (``cifar10/Hendrycks2019Using``).
    n_classes : int, optional
        Default: the architecture's dataset (10 for CIFAR, 1000 for ImageNet).
    normalization : "auto", "none", None, a ``models.NORMALIZATIONS`` name or (mean, std)
        How the [0, 1] inputs reach the network (step 3 of the module docstring).
    clamp : bool, optional
        Clamp inputs to [0, 1] before the normaliser (default: exactly when
        MadryLab's ``normalizer`` buffers were found). Ignored without a normaliser.
    allow_code : bool
        Unpickle files that need code (runs that code: trusted files only).
    map_location : str or torch.device

    Returns
    -------
    UserCheckpoint
        ``.model`` (eval mode, inputs in [0, 1]) and how it was assembled.

    Raises
    ------
    CheckpointError
        One-line messages (missing/unreadable file, code needed, keys or shapes
        that do not fit, conflicting normalisation).
    """
    path = Path(path)
    if not (normalization is None or isinstance(normalization, str) or
            (isinstance(normalization, (tuple, list)) and len(normalization) == 2)):
        raise ValueError(f"normalization must be 'auto', 'none', None, a name or (mean, std), got {normalization!r}")
    entry = zoo_entry(arch)
    entry_name, arch = (arch, entry.arch) if entry is not None else (None, arch)
    network = build_architecture(arch, n_classes)
    own_keys = set(network.state_dict())
    state, stripped = _strip_prefixes(read_state_dict(path, allow_code=allow_code, map_location=map_location),
                                      own_keys)
    in_channels = getattr(network, "in_channels", 3)
    found, where = _pop_normaliser(state, own_keys, in_channels, path)
    layout = layout_options(arch, {k: tuple(v.shape) for k, v in state.items()})
    if layout:
        network = build_architecture(arch, n_classes, **layout)
    _fit(network, state, path, arch)
    norm, source = _choose_norm(path, arch, entry_name, entry.normalization if entry else None, normalization,
                                found, where)
    clamp = (found is not None and where == CLAMPING_NORMALISER) if clamp is None else bool(clamp)
    network.eval()
    model = Normalized(network, *norm, clamp=clamp).eval() if norm is not None else network
    return UserCheckpoint(model=model, network=network, normalization=norm, normalization_source=source,
                          stripped_prefix=stripped, arch=arch, layout=layout, clamp=clamp and norm is not None)
