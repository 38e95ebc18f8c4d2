"""The IDX file format of MNIST and Fashion-MNIST (LeCun et al.; big-endian).

Layout: two zero bytes, a type byte, a byte ``ndim``, ``ndim`` big-endian uint32
sizes, then ``prod(sizes)`` items of the type, nothing else. The file may be
gzipped (detected by its magic, not its name).
"""

from __future__ import annotations

import math
import os
import struct

import numpy as np

from manifold_lab.datasets._files import DatasetError, read_bytes

__all__ = ["read_idx", "IDX_TYPES"]

#: IDX type byte -> big-endian numpy dtype.
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_HEADER = 4
_SIZE_BYTES = 4


def read_idx(path: str | os.PathLike, *, how_to_get: str = "pass the path of a valid IDX file",
             ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a native-endian numpy array.

    Parameters
    ----------
    path : path-like
    how_to_get : str
        Appended to every error message (where a good copy comes from).
    ndim : int, optional
        The number of dimensions the caller expects (1 for labels, 3 for images); a
        header with another is refused as the wrong kind of file before its sizes are read.

    Returns
    -------
    numpy.ndarray
        Shape given by the header, dtype by the type byte (``uint8`` for images/labels).

    Raises
    ------
    DatasetError
        Missing/corrupt file, bad magic, unknown type, or a payload whose length
        differs from the header's sizes (truncated or with trailing bytes).
    """
    data = read_bytes(path, how_to_get)
    if len(data) < _HEADER or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DatasetError(f"{path} is not an IDX file (magic {data[:4].hex() or 'empty'}, expected "
                           f"0000 + type byte + ndim); {how_to_get}")
    expected_ndim = ndim
    dtype, ndim = IDX_TYPES[data[2]], data[3]
    end = _HEADER + _SIZE_BYTES * ndim
    if ndim == 0 or len(data) < end:
        raise DatasetError(f"{path} has a truncated IDX header (ndim={ndim}); {how_to_get}")
    if expected_ndim is not None and ndim != expected_ndim:
        raise DatasetError(f"{path} has an IDX header of {ndim} dimension(s) (magic {data[:4].hex()}) where "
                           f"{expected_ndim} are expected: not the right file, or a corrupt one; {how_to_get}")
    shape = struct.unpack(f">{ndim}I", data[_HEADER:end])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a garbage header cannot overflow
    found = len(data) - end
    if found < expected:
        raise DatasetError(f"{path} is truncated or not an IDX file: its header (sizes {list(shape)}) needs "
                           f"{expected} data bytes, the file has {found}; {how_to_get}")
    if found > expected:
        raise DatasetError(f"{path} is longer than its header says: sizes {list(shape)} need {expected} data "
                           f"bytes, found {found}; {how_to_get}")
    return np.frombuffer(data, dtype=dtype, offset=end).reshape(shape).astype(dtype.newbyteorder("="))
