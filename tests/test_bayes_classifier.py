"""BayesOptimalClassifier: exact, calibrated, and not beaten by a trained network."""

import math

import pytest
import torch
from torch import nn

from manifold_lab.data import GaussianSignalDistractor, VonMisesFisherMixture
from manifold_lab.manifolds import Sphere
from manifold_lab.models import BayesOptimalClassifier

DISTS = {
    "gsd": lambda: GaussianSignalDistractor(3, 4, 16, n_classes=3, noise_std=0.3, seed=0, class_separation=2.0),
    "vmf": lambda: VonMisesFisherMixture(Sphere(2, 16, seed=0), 4, 4.0, 0.2, seed=0),
}


@pytest.fixture(scope="module", params=list(DISTS))
def dist(request):
    return DISTS[request.param]()


def test_module_behaviour(dist):
    model = BayesOptimalClassifier(dist)
    assert isinstance(model, nn.Module) and list(model.parameters()) == []
    x, y = dist.sample(8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(model(x), dist.log_posterior(x))
    assert model(x.float()).dtype == torch.float32
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).gather(1, y[:, None]).sum(), x)
    assert torch.allclose(g, dist.posterior_grad(x.detach(), y), rtol=1e-9, atol=1e-12)
    assert model.n_classes == dist.n_classes and "n_classes" in repr(model)


def test_rejects_non_distributions():
    with pytest.raises(ValueError, match="Distribution"):
        BayesOptimalClassifier(nn.Linear(2, 2))


def _reliability_gaps(log_post, y, n_bins=10, min_count=200):
    """Per (class, bin): |mean predicted p_c - empirical frequency of c| / its binomial SE."""
    probs = log_post.exp()
    z = []
    for c in range(probs.shape[1]):
        p = probs[:, c]
        hit = (y == c).double()
        bins = torch.clamp((p * n_bins).long(), max=n_bins - 1)
        for b in range(n_bins):
            sel = bins == b
            n = int(sel.sum())
            if n < min_count:
                continue
            mean_p = p[sel].mean().item()
            freq = hit[sel].mean().item()
            # Under calibration, freq ~ Binomial(n, ~mean_p) / n: SE from the predicted p
            # (the p's in a bin differ; their mean variance is <= mean_p (1 - mean_p)).
            se = math.sqrt(max(mean_p * (1 - mean_p), 1e-12) / n)
            z.append(abs(freq - mean_p) / se)
    return torch.tensor(z)


def test_posteriors_are_calibrated_on_1e5_samples(dist):
    x, y = dist.sample(100_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    log_post = dist.log_posterior(x)
    z = _reliability_gaps(log_post, y)
    assert len(z) >= 10
    # ~30 bins: under calibration each |z| is ~|N(0,1)|; the largest of 30 exceeds
    # 4.5 with probability < 2e-4 (deterministic seed).
    assert z.max().item() < 4.5
    # Control: the same check rejects logits sharpened by 30%.
    z_bad = _reliability_gaps(torch.log_softmax(1.3 * log_post, -1), y)
    assert z_bad.max().item() > 4.5


def _train_mlp(x, y, n_classes, steps=150, seed=0):
    """A small softplus MLP, full-batch Adam: enough to get within a few 0.01 nats of Bayes."""
    torch.manual_seed(seed)  # test-only: the MLP's initialisation
    mlp = nn.Sequential(nn.Linear(x.shape[1], 64), nn.Softplus(), nn.Linear(64, 64), nn.Softplus(),
                        nn.Linear(64, n_classes))
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(mlp(x), y).backward()
        opt.step()
    return mlp


def test_held_out_nll_not_beaten_by_a_trained_mlp(dist):
    gen = torch.Generator().manual_seed(2)
    x_tr, y_tr = dist.sample(2000, generator=gen)
    x_te, y_te = dist.sample(20000, generator=gen, dtype=torch.float64)
    mlp = _train_mlp(x_tr, y_tr, dist.n_classes)
    with torch.no_grad():
        logits = mlp(x_te.float()).double()
    nll_mlp = nn.functional.cross_entropy(logits, y_te, reduction="none")
    bayes = BayesOptimalClassifier(dist)(x_te)
    nll_bayes = -bayes.gather(1, y_te[:, None]).squeeze(1)
    diff = nll_mlp - nll_bayes  # paired: same test points
    se = diff.std().item() / math.sqrt(len(diff))
    # E[diff] >= 0 for every model (Bayes minimises the expected NLL); allow 3 SE of sampling noise.
    assert diff.mean().item() > -3 * se
    # Not vacuous: the network did learn (within 0.1 nats of Bayes, far below log C).
    assert diff.mean().item() < 0.1 < math.log(dist.n_classes)
    # Accuracy likewise (binomial SE of a difference of two accuracies <= sqrt(0.5 / n)).
    acc_mlp = (logits.argmax(1) == y_te).double().mean().item()
    acc_bayes = (bayes.argmax(1) == y_te).double().mean().item()
    assert acc_mlp <= acc_bayes + 3 * math.sqrt(0.5 / len(y_te))


def test_cuda_matches_cpu(dist, cuda_device):
    model = BayesOptimalClassifier(dist)
    x, _ = dist.sample(64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(model(x.to(cuda_device)).cpu(), model(x), rtol=1e-10, atol=1e-12)
