"""Ground truth fitted to data, for images where no exact manifold or score exists.

- :func:`fit_autoencoder` -> :class:`AutoencoderManifold`: tangent spaces from the
  decoder Jacobian at the encoder's latent (batched forward mode);
- :func:`fit_denoiser` -> :class:`LearnedScore`: a noise-conditional denoiser trained
  by denoising score matching; scores by Tweedie;
- :func:`load_diffusers_score` -> :class:`DiffusersScore`: a user's pretrained diffusers
  DDPM (``UNet2DModel`` + scheduler, ``save_pretrained`` layout) at the timestep whose
  noise level matches sigma (optional ``diffusers`` extra);
- :class:`ScoreModel`: the one score interface (``denoise(x, sigma)``,
  ``score(x, sigma)``) that :class:`ExactScore` (closed-form smoothed score of an exact
  distribution), :class:`LearnedScore` and pretrained diffusion models satisfy.

How good each stand-in is gets measured against exact answers: see
``benchmarks/measure_learned_tangents.py`` and ``benchmarks/measure_learned_scores.py``.
"""

from manifold_lab.learned.autoencoder import AutoencoderManifold, fit_autoencoder
from manifold_lab.learned.diffusers_score import DiffusersScore, load_diffusers_score
from manifold_lab.learned.denoiser import LearnedScore, denoising_loss, fit_denoiser
from manifold_lab.learned.score import ExactScore, ScoreModel

__all__ = ["AutoencoderManifold", "fit_autoencoder", "LearnedScore", "fit_denoiser", "denoising_loss",
           "ScoreModel", "ExactScore", "DiffusersScore", "load_diffusers_score"]
