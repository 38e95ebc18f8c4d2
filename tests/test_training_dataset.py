"""train() on a generic torch Dataset gives the same weights as the (x, y) tensor fast path."""

import torch
from torch.utils.data import Dataset

from manifold_lab.models import MLP
from manifold_lab.training import NoiseAugmentation, train


class Pairs(Dataset):
    """A map-style dataset of (x_i, int label) pairs: not a TensorDataset, so no fast path."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def test_generic_dataset_matches_tensor_path():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(130, 5, generator=g)
    y = (x[:, 0] > 0).long()
    kw = dict(epochs=2, batch_size=32, seed=4, progress=False)
    fast = train(MLP(5, 2, hidden=(8,)), NoiseAugmentation(0.2), (x, y), **kw)
    slow = train(MLP(5, 2, hidden=(8,)), NoiseAugmentation(0.2), Pairs(x, y), **kw)
    for a, b in zip(fast.model.parameters(), slow.model.parameters()):
        assert torch.equal(a, b)
    assert [r["loss"] for r in fast.history] == [r["loss"] for r in slow.history]
