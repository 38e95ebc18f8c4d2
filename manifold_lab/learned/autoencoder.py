"""Learned tangent spaces: an autoencoder's decoder Jacobian (docs/theory.md, "Learned ground truth").

At an image ``x`` the learned tangent space is the column space of the decoder
Jacobian ``J_dec(enc(x))`` (``D x k``), the paper's choice. It is computed in
batched forward mode through :class:`~manifold_lab.manifolds.ImmersedManifold`
(``k`` Jacobian-vector products over the whole batch) instead of the paper's one
backward pass per output pixel. ``x`` itself is generally not on the decoder's
manifold; ``reconstruct(x) - x`` says how far.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from manifold_lab._modes import eval_mode
from manifold_lab._validation import check_positive_int
from manifold_lab.learned._fitting import fit_unsupervised
from manifold_lab.learned._images import as_images, infer_image_shape, placed
from manifold_lab.manifolds import ImmersedManifold
from manifold_lab.models import ConvAutoencoder
from manifold_lab.training import CheckpointError, load_checkpoint, save_checkpoint
from manifold_lab.training.checkpoint import load_state

__all__ = ["AutoencoderManifold", "fit_autoencoder"]

#: Images per batch of forward-mode Jacobians: the ``k`` directions make ``k`` x this many
#: decoder rows at once. Small chunks keep the activations in cache: for a 16-dim latent
#: and 1,000 28x28 images, chunks of 32 took 2.2 s and chunks of 512 took 3.6 s (1 thread).
TANGENT_CHUNK = 32
#: ``extra["kind"]`` of the checkpoints written by :meth:`AutoencoderManifold.save`.
KIND = "autoencoder_manifold"


class _Pair(nn.Module):
    """A user's encoder and decoder held together (same state_dict keys as ConvAutoencoder)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder


class AutoencoderManifold:
    """The image of a decoder, with tangent spaces from its Jacobian at the encoder's latent.

    Parameters
    ----------
    encoder : nn.Module
        ``[n, c, h, w] -> [n, k]``.
    decoder : nn.Module
        ``[n, k] -> [n, c, h, w]`` (or ``[n, D]``); differentiable.
    image_shape : (c, h, w)
    latent_dim : int
        ``k``.
    history : list of dict, optional
        Training history (kept by ``save``).

    Notes
    -----
    Every method takes images ``[n, c, h, w]`` or flattened ``[n, D]``, moves them to
    the modules' device and dtype, and runs the modules in eval mode.
    ``AutoencoderManifold.from_autoencoder(model)`` wraps a :class:`ConvAutoencoder`.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, image_shape: Sequence[int], latent_dim: int,
                 *, history: list[dict] | None = None) -> None:
        if not isinstance(encoder, nn.Module) or not isinstance(decoder, nn.Module):
            raise ValueError("encoder and decoder must be torch.nn.Module instances")
        self.image_shape = tuple(int(s) for s in image_shape)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be (c, h, w), got {tuple(image_shape)}")
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        # The module saved by save(): the pair, or the ConvAutoencoder holding it (from_autoencoder).
        self.model: nn.Module = _Pair(encoder, decoder)
        self.encoder, self.decoder = encoder, decoder
        self.history = list(history or [])
        self.manifold = ImmersedManifold(self._decode_flat, self.latent_dim, self.ambient_dim)

    @classmethod
    def from_autoencoder(cls, model: ConvAutoencoder, *, history: list[dict] | None = None) -> "AutoencoderManifold":
        """Wrap a :class:`~manifold_lab.models.ConvAutoencoder` (saved and rebuilt by class name)."""
        out = cls(model.encoder, model.decoder, model.image_shape, model.latent_dim, history=history)
        out.model = model
        return out

    @property
    def ambient_dim(self) -> int:
        """``D = c h w``."""
        return math.prod(self.image_shape)

    def _decode_flat(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(z.shape[0], self.ambient_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents ``enc(x)``: ``[n, c, h, w]`` or ``[n, D]`` -> ``[n, k]``."""
        x = placed(as_images(x, self.image_shape), self.encoder)
        with eval_mode(self.model):
            return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``dec(z)``: ``[n, k]`` -> ``[n, c, h, w]``."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [n, {self.latent_dim}], got {list(z.shape)}")
        with eval_mode(self.model):
            return self._decode_flat(placed(z, self.decoder)).reshape(z.shape[0], *self.image_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``dec(enc(x))`` in the shape of ``x``."""
        return self.decode(self.encode(x)).reshape(x.shape)

    def tangent_basis(self, x: torch.Tensor, *, chunk_size: int = TANGENT_CHUNK) -> torch.Tensor:
        """Orthonormal basis of the range of ``J_dec(enc(x))``.

        Parameters
        ----------
        x : Tensor, shape [n, c, h, w] or [n, D]
        chunk_size : int
            Images per batched forward-mode Jacobian.

        Returns
        -------
        Tensor, shape [n, D, k]
            ``U`` with ``U^T U = I_k`` (thin SVD of the Jacobian; a rank-deficient
            Jacobian is a one-line ``ValueError``, see ``orthonormal_span``).
        """
        check_positive_int("chunk_size", chunk_size)
        with torch.no_grad():
            z = self.encode(x)
        with eval_mode(self.model):
            return torch.cat([self.manifold.tangent_basis_at(part) for part in z.split(chunk_size)])

    def project_tangent(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``P_T v = U U^T v`` at each image: ``v`` like ``x`` -> the shape of ``v``."""
        basis = self.tangent_basis(x)
        flat = as_images(v, self.image_shape).reshape(v.shape[0], -1).to(basis)
        return (basis @ (basis.mT @ flat[..., None]))[..., 0].reshape(v.shape)

    def project_normal(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``P_N v = v - P_T v``, in the shape of ``v``."""
        return v - self.project_tangent(x, v).to(v)

    def save(self, path: str | os.PathLike) -> Path:
        """``state_dict`` + JSON side file (see ``training.save_checkpoint``), written atomically."""
        extra = {"kind": KIND, "image_shape": list(self.image_shape), "latent_dim": self.latent_dim,
                 "history": self.history}
        return save_checkpoint(path, self.model, epoch=len(self.history), extra=extra)

    @classmethod
    def load(cls, path: str | os.PathLike, *, encoder: nn.Module | None = None, decoder: nn.Module | None = None,
             map_location: str | torch.device = "cpu") -> "AutoencoderManifold":
        """Read a saved manifold (``weights_only=True``; no code is unpickled).

        A :class:`ConvAutoencoder` is rebuilt from its JSON config; a user's own pair
        needs ``encoder=`` and ``decoder=`` modules of the same architecture.
        """
        ck = load_checkpoint(path, map_location=map_location)
        extra = ck.extra if isinstance(ck.extra, dict) else {}
        if extra.get("kind") != KIND:
            raise CheckpointError(f"{path} is not an AutoencoderManifold checkpoint (kind {extra.get('kind')!r})")
        history = extra.get("history", [])
        if encoder is not None or decoder is not None:
            if encoder is None or decoder is None:
                raise ValueError("pass both encoder= and decoder= (or neither, for a ConvAutoencoder)")
            pair = _Pair(encoder, decoder)
            load_state(pair, ck.model_state)
            return cls(encoder, decoder, extra["image_shape"], extra["latent_dim"], history=history)
        if ck.model_class != ConvAutoencoder.__name__:
            raise CheckpointError(f"{path} holds a user's own encoder/decoder ({ck.model_class}); "
                                  "pass encoder= and decoder= modules of that architecture")
        return cls.from_autoencoder(ck.build_model(), history=history)

    def __repr__(self) -> str:
        return f"AutoencoderManifold(image_shape={self.image_shape}, latent_dim={self.latent_dim})"


def _reconstruction_loss(model: nn.Module, x: torch.Tensor, generator=None) -> torch.Tensor:
    """Mean squared reconstruction error per pixel, ``mean((dec(enc(x)) - x)^2)``."""
    return (model(x) - x).square().mean()


def fit_autoencoder(x: torch.Tensor, latent_dim: int, *, epochs: int, batch_size: int = 128, seed: int = 0,
                    device: str | torch.device = "cpu", progress: bool = True, width: int = 32,
                    image_shape: Sequence[int] | None = None, checkpoint_path: str | os.PathLike | None = None,
                    resume: bool = False) -> AutoencoderManifold:
    """Train a :class:`~manifold_lab.models.ConvAutoencoder` on ``x`` (mean squared error, Adam).

    Parameters
    ----------
    x : Tensor, shape [n, c, h, w] or [n, D]
        Training images (``D`` in 784, 1024, 3072, or pass ``image_shape``).
    latent_dim : int
        ``k``, the dimension of the learned manifold.
    epochs, batch_size, seed, device, progress
        As for :func:`manifold_lab.training.train` (seeded data order and init).
    width : int
        Channels of the first convolution.
    image_shape : (c, h, w), optional
        Needed for flattened ``x`` of an unusual size.
    checkpoint_path, resume
        Save a training checkpoint after every epoch / continue from it (the
        trainer's; a resumed fit ends with the weights of an uninterrupted one).

    Returns
    -------
    AutoencoderManifold
        On ``device``; ``history`` holds the per-epoch loss and time.
    """
    shape = infer_image_shape(x, image_shape)
    images = as_images(x, shape).to(torch.float32)
    model = ConvAutoencoder(shape, latent_dim, width=width, seed=seed)
    history = fit_unsupervised(model, _reconstruction_loss, images, epochs=epochs, batch_size=batch_size,
                               seed=seed, device=device, progress=progress, checkpoint_path=checkpoint_path,
                               resume=resume)
    return AutoencoderManifold.from_autoencoder(model, history=history)
