"""Named model-zoo entries: which architecture a RobustBench id is, and how its inputs are prepared.

A few RobustBench models prepare their inputs inside ``forward`` and keep no buffer
that says so (``Hendrycks2019Using`` computes ``2x − 1``; the ImageNet entries are
``normalize_model(resnet, mean, std)`` whose files hold the network only). Their
checkpoints cannot tell the loader, so the entry's name does: ``--arch
cifar10/Hendrycks2019Using`` is ``wideresnet28_10`` behind the ``half``
normalisation. Names are ``<dataset>/<RobustBench id>`` because RobustBench reuses
ids across data sets (``Wong2020Fast`` is a CIFAR PreAct ResNet-18 and an ImageNet
ResNet-50).

Every entry was read from RobustBench 1.1.1's ``model_zoo/cifar10.py`` and
``model_zoo/imagenet.py`` (the class each id builds, its ``forward`` and buffers);
``tests/fixtures/upstream/make_fixtures.py`` builds each listed id with the upstream
code and records its ``state_dict`` keys and shapes, and
``tests/test_zoo_upstream.py`` checks that the entry's architecture has exactly
those keys and shapes (so a wrong architecture or variant cannot hide here).
"""

from __future__ import annotations

# The table is plain data and lives in the torch-free ``_evaluate_index`` (``run evaluate``
# checks ``--arch`` against it before torch is imported); this module is its documented home.
from manifold_lab._evaluate_index import ZOO_ENTRIES, ZooEntry, zoo_entry

__all__ = ["ZooEntry", "ZOO_ENTRIES", "zoo_entry"]
