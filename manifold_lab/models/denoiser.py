"""A noise-conditional convolutional denoiser ``D(x, sigma)`` with EDM preconditioning.

Karras et al. (2022, "Elucidating the design space of diffusion-based generative
models") write the denoiser as

    D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma)),
    c_skip = s_d^2 / (sigma^2 + s_d^2),   c_out = sigma s_d / sqrt(sigma^2 + s_d^2),
    c_in = 1 / sqrt(sigma^2 + s_d^2),     c_noise = log(sigma) / 4,

with ``s_d`` the data standard deviation. Then the network input and its
regression target ``(x_0 - c_skip x) / c_out`` have unit variance at every sigma,
which is what lets one network train well over a wide log-uniform range of
noise levels (loss weight ``1 / c_out^2`` is folded into the target).

**Class-conditional** (``n_classes`` given): ``D(x, sigma, y)`` for a class ``y`` is the
unconditional denoiser plus a noise-conditional classifier's gradient (classifier
guidance, Dhariwal & Nichol 2021, in one model),

    D(x, sigma, y) = D(x, sigma) + sigma^2 grad_x log p_theta(y | x, sigma),

which is Tweedie's formula for ``E[x_0 | x, y]`` exactly when ``p_theta(y | x, sigma)`` is the
posterior of the noise-smoothed data, ``p_sigma(y | x)``; so the learned Bayes gradient
``s_sigma(x | y) - s_sigma(x)`` is the classifier's input gradient, and the unconditional
denoiser ``y = None`` is the same network as without classes. The classifier is a
small MLP on the preconditioned input ``c_in (x - m)`` with the noise embedding. Such
a model is also **centred**: with the data mean image ``m`` (a buffer),

    D(x, sigma) = m + c_skip (x - m) + c_out F(c_in (x - m), c_noise),

the preconditioning of Karras et al. applied to the centred data (``s_d`` is then
the standard deviation of ``x - m``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from manifold_lab._validation import check_class_labels, check_image_batch, check_positive, check_positive_int
from manifold_lab.models._activations import check_smooth_activation, make_activation
from manifold_lab.models.autoencoder import check_image_shape
from manifold_lab.models.init import materialize

__all__ = ["NoiseConditionalDenoiser", "edm_coefficients"]

#: Frequencies ``2^0 .. 2^(n-1)`` of the sinusoidal embedding of ``c_noise``.
N_FREQUENCIES = 6
#: Width of the latent of the global (fully connected) bottleneck at 1/4 resolution.
BOTTLENECK = 256


def edm_coefficients(sigma: torch.Tensor, sigma_data: float):
    """``(c_skip, c_out, c_in, c_noise)`` of the module docstring, each shaped like ``sigma``."""
    var = sigma.square() + sigma_data ** 2
    return sigma_data ** 2 / var, sigma * sigma_data / var.sqrt(), var.rsqrt(), sigma.log() / 4


#: Hidden width of the classifier of a class-conditional model: two layers of it
#: on the flattened image (the posterior of images depends on few directions).
CLASSIFIER_WIDTH = 128
#: The classifier's initialisation seed is the model's seed plus this (own stream).
CLASSIFIER_SEED_OFFSET = 1_000_003


class _Classifier(nn.Module):
    """Logits ``W3 act(W2 act(W1 x + shift(emb)))``: ``[n, D] x [n, emb] -> [n, C]`` (smooth in ``x``)."""

    def __init__(self, dim: int, emb: int, n_classes: int, activation: str) -> None:
        super().__init__()
        self.inp = nn.Linear(dim, CLASSIFIER_WIDTH)
        self.shift = nn.Linear(emb, CLASSIFIER_WIDTH)
        self.act1, self.act2 = make_activation(activation), make_activation(activation)
        self.hidden = nn.Linear(CLASSIFIER_WIDTH, CLASSIFIER_WIDTH)
        self.out = nn.Linear(CLASSIFIER_WIDTH, n_classes)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.out(self.act2(self.hidden(self.act1(self.inp(x) + self.shift(emb)))))


class _ResBlock(nn.Module):
    """``x + conv(act(conv(act(x)) + shift(emb)))``: a residual block with an additive noise embedding."""

    def __init__(self, channels: int, emb: int, activation: str) -> None:
        super().__init__()
        self.act1, self.act2 = make_activation(activation), make_activation(activation)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shift = nn.Linear(emb, channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act1(x)) + self.shift(emb)[:, :, None, None]
        return x + self.conv2(self.act2(h))


class NoiseConditionalDenoiser(nn.Module):
    """``forward(x, sigma) = D(x, sigma)`` (module docstring), ``[n, c, h, w] x [n] -> [n, c, h, w]``.

    ``F`` is a small U-Net: residual blocks at full, 1/2 and 1/4 resolution (``width``,
    ``2 width``, ``2 width`` channels) joined by stride-2 (transposed) convolutions and
    additive skips, plus a fully connected bottleneck at 1/4 resolution so that the
    output can depend on the whole image (the exact denoiser of a Gaussian is a
    global linear map). The noise level enters every block through a sinusoidal
    embedding of ``c_noise``.

    Parameters
    ----------
    image_shape : (c, h, w)
        ``h, w`` multiples of 4.
    sigma_data : float
        ``s_d`` > 0, the data standard deviation (``fit_denoiser`` measures it).
    width : int
        Channels at full resolution.
    activation : str
        One of ``SMOOTH_ACTIVATIONS``.
    seed : int
        Initialisation seed.
    n_classes : int, optional
        Class-conditional with this many classes (module docstring); ``None``
        (default): unconditional, the same network and initialisation as before
        this option existed. The other weights do not depend on it.
    """

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28), *, sigma_data: float = 0.5, width: int = 32,
                 activation: str = "silu", seed: int = 0, n_classes: int | None = None) -> None:
        super().__init__()
        c, h, w = self.image_shape = check_image_shape(image_shape)
        check_positive("sigma_data", sigma_data)
        self.sigma_data, self.width = float(sigma_data), check_positive_int("width", width)
        check_smooth_activation(activation)
        self.activation, self.seed = activation, seed
        emb, wide = 4 * width, 2 * width
        quarter = wide * (h // 4) * (w // 4)
        with torch.device("meta"):
            self.embed = nn.Sequential(nn.Linear(2 * N_FREQUENCIES, emb), make_activation(activation),
                                       nn.Linear(emb, emb))
            self.conv_in = nn.Conv2d(c, width, 3, padding=1)
            self.block1 = _ResBlock(width, emb, activation)
            self.down1 = nn.Conv2d(width, wide, 4, 2, 1)
            self.block2 = _ResBlock(wide, emb, activation)
            self.down2 = nn.Conv2d(wide, wide, 4, 2, 1)
            self.block3 = _ResBlock(wide, emb, activation)
            self.global_in = nn.Linear(quarter, BOTTLENECK)
            self.global_act = make_activation(activation)
            self.global_out = nn.Linear(BOTTLENECK, quarter)
            self.up2 = nn.ConvTranspose2d(wide, wide, 4, 2, 1)
            self.block4 = _ResBlock(wide, emb, activation)
            self.up1 = nn.ConvTranspose2d(wide, width, 4, 2, 1)
            self.block5 = _ResBlock(width, emb, activation)
            self.out_act = make_activation(activation)
            self.conv_out = nn.Conv2d(width, c, 3, padding=1)
        materialize(self, seed)
        # Not a parameter and not saved: fixed by N_FREQUENCIES.
        self.register_buffer("freqs", 2.0 ** torch.arange(N_FREQUENCIES, dtype=torch.float32), persistent=False)
        self.n_classes = None if n_classes is None else check_positive_int("n_classes", n_classes, minimum=2)
        if self.n_classes is not None:
            with torch.device("meta"):
                self.classifier = _Classifier(c * h * w, emb, self.n_classes, activation)
            # Its own generator: the denoiser's weights are those of the unconditional model.
            materialize(self.classifier, seed + CLASSIFIER_SEED_OFFSET)
            self.register_buffer("data_mean", torch.zeros(c, h, w))

    @property
    def conditional(self) -> bool:
        """Whether the model takes a class (``n_classes`` given)."""
        return self.n_classes is not None

    def _noise_embedding(self, c_noise: torch.Tensor) -> torch.Tensor:
        angles = c_noise[:, None] * self.freqs.to(c_noise)
        return self.embed(torch.cat([angles.sin(), angles.cos()], dim=-1))

    def class_logits(self, x_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """The classifier's logits on the preconditioned input: ``[n, c, h, w] x [n] -> [n, C]``."""
        if not self.conditional:
            raise ValueError("this denoiser was built without classes (n_classes=None); it has no "
                             "class-conditional output")
        return self.classifier(x_in.flatten(1), self._noise_embedding(c_noise))

    def log_posterior(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``log p_theta(c | x, sigma)`` for every class: ``[n, c, h, w] x [n] -> [n, C]``."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
        _, _, c_in, c_noise = edm_coefficients(sigma, self.sigma_data)
        centred = x - self.data_mean.to(x)
        return torch.log_softmax(self.class_logits(c_in[:, None, None, None] * centred, c_noise), dim=-1)

    def posterior_grad(self, x: torch.Tensor, sigma: torch.Tensor | float, y: torch.Tensor | int,
                       create_graph: bool = False) -> torch.Tensor:
        """``grad_x log p_theta(y | x, sigma)``: ``[n, c, h, w] x [n] x [n] -> [n, c, h, w]`` (autograd).

        ``create_graph=True`` keeps the graph (training through the gradient).
        """
        labels = self.class_index(y, x.shape[0], x.device)
        with torch.enable_grad():
            xr = x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True)
            chosen = self.log_posterior(xr, sigma).gather(1, labels[:, None]).sum()
            return torch.autograd.grad(chosen, xr, create_graph=create_graph)[0]

    def class_index(self, y: torch.Tensor | int, n: int, device: torch.device) -> torch.Tensor:
        """Labels ``y`` (``[n]`` or one int) as an int64 ``[n]`` tensor in ``[0, n_classes)`` (checked)."""
        if not self.conditional:
            raise ValueError("this denoiser was built without classes (n_classes=None); it has no "
                             "class-conditional output")
        return check_class_labels(torch.as_tensor(y, device=device), n, self.n_classes)

    def network(self, x_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """The raw network ``F(c_in x, c_noise)``: ``[n, c, h, w] x [n] -> [n, c, h, w]``."""
        emb = self._noise_embedding(c_noise)
        h1 = self.block1(self.conv_in(x_in), emb)
        h2 = self.block2(self.down1(h1), emb)
        h3 = self.block3(self.down2(h2), emb)
        h3 = h3 + self.global_out(self.global_act(self.global_in(h3.flatten(1)))).reshape(h3.shape)
        u2 = self.block4(self.up2(h3) + h2, emb)
        u1 = self.block5(self.up1(u2) + h1, emb)
        return self.conv_out(self.out_act(u1))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, y: torch.Tensor | int | None = None
                ) -> torch.Tensor:
        """``D(x, sigma)``, or ``D(x, sigma, y)`` (conditional model): ``[n, c, h, w] x [n] (x [n]) -> [n, c, h, w]``."""
        check_image_batch("denoiser", x, self.image_shape[0], self.image_shape[1:])
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = (t[:, None, None, None] if i < 3 else t
                                        for i, t in enumerate(edm_coefficients(sigma, self.sigma_data)))
        if not self.conditional:
            if y is not None:
                self.class_index(y, x.shape[0], x.device)  # raises: no classes
            return c_skip * x + c_out * self.network(c_in * x, c_noise)
        mean = self.data_mean.to(x)
        out = mean + c_skip * (x - mean) + c_out * self.network(c_in * (x - mean), c_noise)
        if y is None:
            return out
        return out + sigma[:, None, None, None].square() * self.posterior_grad(x, sigma, y)

    def config(self) -> dict:
        """JSON-able constructor arguments (``n_classes`` only when conditional, so an
        unconditional model's configuration is what it was before the option existed)."""
        cfg = {"image_shape": list(self.image_shape), "sigma_data": self.sigma_data, "width": self.width,
               "activation": self.activation, "seed": self.seed}
        if self.conditional:
            cfg["n_classes"] = self.n_classes
        return cfg


