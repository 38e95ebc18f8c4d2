"""The ImageFolder / ImageNet readers list files as torchvision 0.29's ``ImageFolder`` does.

``tests/fixtures/upstream/image_folder.json`` was written by torchvision itself
(``make_fixtures.py``): a tree with nested folders, every extension of its
``IMG_EXTENSIONS`` in mixed case, non-images, a hidden file and an empty class; its
classes, its ``samples`` with ``allow_empty=True`` and its error without.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from manifold_lab.datasets import DatasetError, image_folder_classes, imagenet_classes, imagenet_items
from manifold_lab.datasets.image_folder import IMAGE_SUFFIXES

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "upstream" / "image_folder.json").read_text())


@pytest.fixture()
def tree(tmp_path):
    for rel in FIXTURE["tree"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    return tmp_path


def test_extensions_are_torchvisions():
    assert IMAGE_SUFFIXES == tuple(FIXTURE["extensions"])


def test_imagenet_listing_equals_torchvision_allow_empty(tree):
    assert imagenet_classes(tree) == FIXTURE["classes"]
    got = [[str(p.relative_to(tree)), label] for p, label in imagenet_items(tree)]
    assert got == FIXTURE["samples_allow_empty"]


def test_image_folder_refuses_an_empty_class_as_torchvision_does(tree):
    assert FIXTURE["default_error"] is not None and "c_empty" in FIXTURE["default_error"]
    with pytest.raises(DatasetError, match="c_empty.*hold no image") as info:
        image_folder_classes(tree)
    assert "\n" not in str(info.value)
    (tree / "c_empty" / "readme.md").unlink()
    (tree / "c_empty").rmdir()
    assert image_folder_classes(tree) == [c for c in FIXTURE["classes"] if c != "c_empty"]
