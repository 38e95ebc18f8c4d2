"""A pretrained diffusers DDPM (``UNet2DModel`` + scheduler) as a :class:`ScoreModel`.

Scalings. The library's images ``x`` live in [0, 1] and a noise level ``sigma``
means ``y = x + sigma·eps`` (``eps ~ N(0, I)``) in that space. A DDPM (Ho et al.
2020; e.g. ``google/ddpm-cifar10-32``) is trained on ``x' = 2x − 1`` in [−1, 1] with
the variance-preserving forward process

    x_t = sqrt(abar_t)·x' + sqrt(1 − abar_t)·eps = sqrt(abar_t)·(x' + sigma'_t·eps),
    sigma'_t = sqrt((1 − abar_t) / abar_t),

where ``abar_t`` is the scheduler's ``alphas_cumprod[t]``. Since
``2y − 1 = x' + 2·sigma·eps``, a library noise level ``sigma`` is the DDPM's
``sigma' = 2·sigma``, and

1. the timestep is the ``t`` whose ``sigma'_t`` is nearest to ``2·sigma`` in
   ``log sigma`` (:meth:`DiffusersScore.timestep_for_sigma`; ``abar`` computed in
   float64 from the scheduler's betas, since float32 ``alphas_cumprod`` keeps only
   about 4 digits of ``1 − abar`` at small ``t``); a ``sigma`` outside ``[sigma_0, sigma_{T−1}]`` / 2 is an
   error;
2. the network sees ``x_t = (2y − 1) / sqrt(1 + sigma'^2)``, i.e.
   ``sqrt(abar)·(2y − 1)`` with ``abar = 1/(1 + sigma'^2)`` of the *requested*
   noise level (so the input has the variance the network was trained on even
   between grid points), and predicts ``eps_hat = unet(x_t, t)``;
3. Tweedie in [−1, 1]: ``x̂' = (2y − 1) − sigma'·eps_hat``; back in [0, 1]:

       D(y, sigma) = y − sigma·eps_hat,      s_sigma(y) = (D − y)/sigma^2 = −eps_hat / sigma.

   In the model's own [−1, 1] scaling the score is ``−eps_hat / sigma'``; the
   ``[0, 1]`` score returned by :meth:`score` is twice it (chain rule of
   ``x' = 2x − 1``), the space every metric of the library works in.

Only ``prediction_type="epsilon"`` schedulers are accepted (DDPM/DDIM configs).
Weights are read by diffusers (``safetensors``, or ``.bin`` with
``torch.load(weights_only=True)``); nothing is downloaded (``local_files_only``).
EDM pickles carry code and are not read here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from manifold_lab._modes import eval_mode
from manifold_lab._validation import check_positive_int
from manifold_lab.learned._images import as_images, module_placement
from manifold_lab.learned.score import ScoreModel, sigma_per_example

__all__ = ["DiffusersScore", "load_diffusers_score", "find_diffusers_layout"]

#: DDPM data range [−1, 1] from the library's [0, 1]: x' = _SCALE·x − 1.
_SCALE = 2.0
#: Relative slack on the ends of the timestep grid before a sigma counts as outside it.
_GRID_SLACK = 1.05
_INSTALL_HINT = "install the optional extra: pip install 'manifold_lab[diffusers]' (or pip install diffusers)"


def _diffusers():
    try:
        import diffusers
    except ImportError:
        raise ImportError(f"DiffusersScore needs the diffusers package, which is not installed; "
                          f"{_INSTALL_HINT}") from None
    return diffusers


def find_diffusers_layout(root: str | os.PathLike) -> tuple[Path, Path]:
    """``(unet_dir, scheduler_dir)`` of a ``save_pretrained`` directory.

    Accepts a pipeline directory (``model_index.json``, ``unet/``, ``scheduler/``, as
    ``DDPMPipeline.save_pretrained`` writes) or one that holds the UNet's
    ``config.json`` and ``scheduler_config.json`` side by side (as the
    ``google/ddpm-cifar10-32`` repository does).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"diffusion model directory {root} not found (a local save_pretrained copy, "
                                "e.g. of google/ddpm-cifar10-32)")
    unet = root / "unet" if (root / "unet" / "config.json").is_file() else root
    sched = root / "scheduler" if (root / "scheduler" / "scheduler_config.json").is_file() else root
    if not (unet / "config.json").is_file():
        raise FileNotFoundError(f"{root} has no UNet config (expected {root}/unet/config.json or "
                                f"{root}/config.json, as save_pretrained writes)")
    if not (sched / "scheduler_config.json").is_file():
        raise FileNotFoundError(f"{root} has no scheduler config (expected {root}/scheduler/"
                                f"scheduler_config.json or {root}/scheduler_config.json)")
    return unet, sched


class DiffusersScore(ScoreModel):
    """``D(y, sigma) = y − sigma·eps_hat`` from a DDPM ε-prediction UNet (see the module docstring).

    Parameters
    ----------
    unet : diffusers.UNet2DModel
    alphas_cumprod : Tensor, shape [T]
        The scheduler's ``abar_t`` (increasing ``t`` = more noise).
    batch_size : int
        Images per UNet call.
    """

    def __init__(self, unet, alphas_cumprod: torch.Tensor, *, batch_size: int = 256) -> None:
        check_positive_int("batch_size", batch_size)
        abar = torch.as_tensor(alphas_cumprod).detach().to("cpu", torch.float64)
        if abar.ndim != 1 or abar.numel() < 2 or not bool(((abar > 0) & (abar < 1)).all()):
            raise ValueError("alphas_cumprod must be a [T] tensor (T >= 2) with values in (0, 1)")
        if not bool((abar[1:] < abar[:-1]).all()):
            raise ValueError("alphas_cumprod must decrease with t")
        cfg = unet.config
        side = cfg.sample_size
        h, w = (side, side) if isinstance(side, int) else tuple(side)
        if cfg.in_channels != cfg.out_channels:
            raise ValueError(f"the UNet must predict noise of its input's shape, got {cfg.in_channels} input "
                             f"and {cfg.out_channels} output channels")
        self.unet, self.batch_size = unet.eval(), batch_size
        self.image_shape = (int(cfg.in_channels), int(h), int(w))
        self.alphas_cumprod = abar
        #: Library-space (``[0, 1]``) noise level of every timestep, float64 ``[T]``.
        self.sigmas = ((1 - abar) / abar).sqrt() / _SCALE

    def sigma_of_timestep(self, t: torch.Tensor | int) -> torch.Tensor:
        """``sigma_t = sqrt((1 − abar_t)/abar_t) / 2`` in the library's [0, 1] scaling (float64)."""
        return self.sigmas[torch.as_tensor(t, dtype=torch.long)]

    def timestep_for_sigma(self, sigma: torch.Tensor | float) -> torch.Tensor:
        """Timesteps ``[n]`` (int64) nearest to ``sigma`` in log noise level.

        Raises
        ------
        ValueError
            A ``sigma`` outside the schedule's range ``[sigma_0, sigma_{T−1}]`` (5 % slack).
        """
        sig = torch.as_tensor(sigma, dtype=torch.float64).detach().cpu().flatten()
        lo, hi = float(self.sigmas[0]), float(self.sigmas[-1])
        if bool((sig < lo / _GRID_SLACK).any() or (sig > hi * _GRID_SLACK).any()):
            raise ValueError(f"sigma must lie in the diffusion schedule's range [{lo:.4g}, {hi:.4g}] "
                             f"(pixel scale [0, 1]), got values in [{float(sig.min()):.4g}, {float(sig.max()):.4g}]")
        return (self.sigmas.log()[None, :] - sig.log()[:, None]).abs().argmin(1)

    def predict_noise(self, images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``eps_hat [n, c, h, w]`` for ``[0, 1]``-scaled noisy images and their ``sigma [n]``."""
        t = self.timestep_for_sigma(sigma)
        device, dtype = module_placement(self.unet)
        sig_p = (_SCALE * sigma).to(device, dtype).view(-1, 1, 1, 1)
        model_in = (_SCALE * images.to(device, dtype) - 1) / (1 + sig_p.square()).sqrt()
        out = []
        with torch.no_grad(), eval_mode(self.unet):
            for i in range(0, images.shape[0], self.batch_size):
                out.append(self.unet(model_in[i:i + self.batch_size], t[i:i + self.batch_size].to(device)).sample)
        return torch.cat(out).to(images)

    def _denoise(self, images, sigma):
        return images - sigma.view(-1, 1, 1, 1) * self.predict_noise(images, sigma)

    def score(self, x, sigma, y=None):
        """``s_sigma(y) = −eps_hat / sigma`` in [0, 1] pixel scaling: ``[n, D]`` (exact form, no Tweedie difference).

        Unconditional: a class ``y`` is a one-line error (``ScoreModel._labels``)."""
        images = as_images(x, self.image_shape)
        if y is not None:
            self._labels(y, images.shape[0], "score(x, sigma, y)")
        sig = sigma_per_example(sigma, images.shape[0], images)
        return -(self.predict_noise(images, sig).reshape(images.shape[0], -1) / sig[:, None])

    def __repr__(self) -> str:
        return (f"DiffusersScore(image_shape={self.image_shape}, T={self.alphas_cumprod.numel()}, "
                f"sigma in [{float(self.sigmas[0]):.3g}, {float(self.sigmas[-1]):.3g}])")


def load_diffusers_score(root: str | os.PathLike, *, device: str | torch.device = "cpu",
                         batch_size: int = 256) -> DiffusersScore:
    """Read a local ``save_pretrained`` DDPM directory (see :func:`find_diffusers_layout`).

    Raises
    ------
    ImportError
        diffusers is not installed (one line, with the install command).
    FileNotFoundError, ValueError
        Missing files, a non-ε-prediction scheduler (one-line messages).
    """
    diffusers = _diffusers()
    unet_dir, sched_dir = find_diffusers_layout(root)
    try:
        sched_cfg = json.loads((sched_dir / "scheduler_config.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{sched_dir / 'scheduler_config.json'} is unreadable ({type(exc).__name__})") from None
    prediction = sched_cfg.get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise ValueError(f"{sched_dir} predicts {prediction!r}; DiffusersScore needs an epsilon-prediction "
                         "DDPM/DDIM scheduler")
    try:
        scheduler = diffusers.DDPMScheduler.from_config(sched_cfg)
        unet = diffusers.UNet2DModel.from_pretrained(unet_dir, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot load the diffusion model in {root}: {first[:200]}") from None
    # abar from the betas in float64: the float32 alphas_cumprod keeps only ~4 digits of 1 − abar at t = 0.
    abar = torch.cumprod(1 - scheduler.betas.to(torch.float64), 0)
    return DiffusersScore(unet.to(device), abar, batch_size=batch_size)
