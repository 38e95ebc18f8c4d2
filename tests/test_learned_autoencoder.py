"""AutoencoderManifold / fit_autoencoder: exact Jacobian spans, projectors, save/load, user pairs, bad input."""

import pytest
import torch
from torch import nn

from manifold_lab.learned import AutoencoderManifold, fit_autoencoder
from manifold_lab.manifolds import RenderedShape, orthonormal_span
from manifold_lab.metrics import subspace_distance
from manifold_lab.models import ConvAutoencoder
from manifold_lab.training import CheckpointError

SHAPE = RenderedShape()


@pytest.fixture(scope="module")
def fitted():
    x, _ = SHAPE.sample_with_latent(96, generator=torch.Generator().manual_seed(0))
    return fit_autoencoder(x, 3, epochs=2, batch_size=32, width=4, progress=False), x


def test_fit_trains_and_records_history(fitted):
    ae, x = fitted
    assert len(ae.history) == 2 and ae.history[1]["loss"] < ae.history[0]["loss"]
    assert ae.encode(x).shape == (96, 3) and ae.decode(ae.encode(x)).shape == (96, 1, 28, 28)
    assert ae.reconstruct(x).shape == x.shape  # flattened in, flattened out
    assert ae.reconstruct(SHAPE.to_images(x)).shape == (96, 1, 28, 28)


def test_fit_is_seeded(fitted):
    ae, x = fitted
    again = fit_autoencoder(x, 3, epochs=2, batch_size=32, width=4, progress=False)
    torch.testing.assert_close(again.reconstruct(x[:5]), ae.reconstruct(x[:5]), rtol=0, atol=0)


def test_tangent_basis_spans_the_float64_decoder_jacobian(fitted):
    ae, x = fitted
    model = ConvAutoencoder((1, 28, 28), 3, width=4)
    model.load_state_dict(ae.model.state_dict())
    model = model.double()
    ae64 = AutoencoderManifold.from_autoencoder(model)
    xs = x[:4].double()
    basis = ae64.tangent_basis(xs, chunk_size=3)  # two chunks
    assert basis.shape == (4, 784, 3)
    torch.testing.assert_close(basis.mT @ basis, torch.eye(3, dtype=torch.float64).expand(4, 3, 3))
    z = model.encoder(SHAPE.to_images(xs))
    ref = torch.stack([torch.autograd.functional.jacobian(lambda zz: model.decoder(zz[None]).flatten(), zi)
                       for zi in z])
    assert float(subspace_distance(basis, orthonormal_span(ref)).max()) < 1e-10
    # float32 path agrees to float32 accuracy
    assert float(subspace_distance(ae.tangent_basis(x[:4]), basis.float()).max()) < 1e-3


def test_projectors_split_any_vector(fitted):
    ae, x = fitted
    v = torch.randn(4, 784, generator=torch.Generator().manual_seed(1))
    t, n = ae.project_tangent(x[:4], v), ae.project_normal(x[:4], v)
    torch.testing.assert_close(t + n, v)
    torch.testing.assert_close(ae.project_tangent(x[:4], t), t, atol=1e-5, rtol=1e-4)
    assert float((t * n).sum(-1).abs().max()) < 1e-4
    assert ae.project_tangent(SHAPE.to_images(x[:4]), SHAPE.to_images(v)).shape == (4, 1, 28, 28)


def test_save_load_round_trip(tmp_path, fitted):
    ae, x = fitted
    path = ae.save(tmp_path / "ae.pt")
    back = AutoencoderManifold.load(path)
    torch.testing.assert_close(back.tangent_basis(x[:3]), ae.tangent_basis(x[:3]), rtol=0, atol=0)
    assert back.history == ae.history and back.latent_dim == 3


def test_users_own_pair_plugs_in_and_saves(tmp_path):
    enc = nn.Sequential(nn.Flatten(), nn.Linear(784, 2))
    dec = nn.Sequential(nn.Linear(2, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
    ae = AutoencoderManifold(enc, dec, (1, 28, 28), 2)
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    basis = ae.tangent_basis(x)
    assert basis.shape == (5, 784, 2)
    path = ae.save(tmp_path / "pair.pt")
    with pytest.raises(CheckpointError, match="pass encoder= and decoder="):
        AutoencoderManifold.load(path)
    enc2 = nn.Sequential(nn.Flatten(), nn.Linear(784, 2))
    dec2 = nn.Sequential(nn.Linear(2, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
    back = AutoencoderManifold.load(path, encoder=enc2, decoder=dec2)
    torch.testing.assert_close(back.tangent_basis(x), basis)


def test_load_refuses_other_and_damaged_checkpoints(tmp_path, fitted):
    ae, _ = fitted
    path = ae.save(tmp_path / "ae.pt")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="does not match"):
        AutoencoderManifold.load(path)
    with pytest.raises(CheckpointError, match="not found"):
        AutoencoderManifold.load(tmp_path / "missing.pt")


@pytest.mark.parametrize("x, kwargs, match", [
    (torch.rand(4, 100), {}, "image_shape"),
    (torch.rand(4, 3, 28, 28).to(torch.int64), {}, "floating"),
    (torch.full((4, 784), float("nan")), {}, "NaN"),
    (torch.rand(4, 1, 27, 27), {}, "multiples of 4"),
    (torch.rand(4, 784), {"image_shape": (1, 28, 27)}, "does not hold"),
])
def test_bad_training_input(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_autoencoder(x, 2, epochs=1, progress=False, **kwargs)


def test_bad_query_shape(fitted):
    ae, _ = fitted
    with pytest.raises(ValueError, match=r"\[n, 1, 28, 28\]"):
        ae.tangent_basis(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="z must have shape"):
        ae.decode(torch.rand(2, 5))
