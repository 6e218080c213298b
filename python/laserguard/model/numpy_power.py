"""numpy's own float64 ``power`` inner loop, for the C++ core to finish sklearn's scores with.

sklearn computes ``-2 ** (-depths / denominator)`` with numpy's ``power``, which uses SIMD (SVML)
code where the CPU has AVX-512 and so differs from libm's ``pow`` by 1 ulp in a fraction of rows.
To stay bit-exact without a Python round trip per frame, the C++ scorer calls numpy's loop
itself. numpy exposes the loops only through its C struct ``PyUFuncObject`` (``functions``,
``data``, ``types``); we read them with ctypes, check the struct's integer fields against the
ufunc's public attributes, and keep a loop only if it reproduces ``np.power(2.0, x)`` bit for
bit on a probe. If anything does not check out, ``power_loop`` returns None and the core uses
libm (within 2 ulp, as documented for ``decision_function_native``).
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

_NPY_DOUBLE = np.dtype(np.float64).num
_POINTER = ctypes.sizeof(ctypes.c_void_p)
_LOOP = ctypes.CFUNCTYPE(
    None,
    ctypes.POINTER(ctypes.c_void_p),
    ctypes.POINTER(ctypes.c_ssize_t),
    ctypes.POINTER(ctypes.c_ssize_t),
    ctypes.c_void_p,
)


def _read_int(address: int) -> int:
    return int(ctypes.c_int.from_address(address).value)


def _read_pointer(address: int) -> int:
    return int(ctypes.c_void_p.from_address(address).value or 0)


def _probe() -> np.ndarray:
    rng = np.random.default_rng(20261129)
    # The exponents sklearn produces (-depths / denominator lies in about [-2, 0]) and edges.
    return np.concatenate([-rng.uniform(0.0, 2.0, 65536), [0.0, -0.0, -1.0, -0.5, -1e-300, -2.0]])


def _runs(loop: int, data: int, x: np.ndarray) -> np.ndarray:
    out = x.copy()
    two = np.array([2.0])
    args = (ctypes.c_void_p * 3)(two.ctypes.data, out.ctypes.data, out.ctypes.data)
    dims = (ctypes.c_ssize_t * 1)(out.size)
    steps = (ctypes.c_ssize_t * 3)(0, 8, 8)
    _LOOP(loop)(args, dims, steps, data or None)
    return out


@functools.cache
def power_loop() -> tuple[int, int] | None:
    """(function pointer, data pointer) of numpy's float64 power loop, or None if not verifiable."""
    if _POINTER != 8 or ctypes.sizeof(ctypes.c_ssize_t) != 8:
        return None
    ufunc = np.power
    base = id(ufunc)
    head = 2 * _POINTER  # PyObject_HEAD: refcount, type
    nin, nout, nargs = (_read_int(base + head + 4 * i) for i in range(3))
    functions = _read_pointer(base + head + 16)
    data = _read_pointer(base + head + 24)
    ntypes = _read_int(base + head + 32)
    types = _read_pointer(base + head + 48)
    if (
        (nin, nout, nargs, ntypes) != (ufunc.nin, ufunc.nout, ufunc.nargs, ufunc.ntypes)
        or not functions
        or not types
    ):
        return None
    signature = ctypes.string_at(types, ntypes * nargs)
    if [signature[i * nargs : (i + 1) * nargs] for i in range(ntypes)] != [
        bytes(np.dtype(c).num for c in t.replace("->", "")) for t in ufunc.types
    ]:
        return None
    probe = _probe()
    expected = np.power(2.0, probe)
    for i in range(ntypes):
        if signature[i * nargs : (i + 1) * nargs] != bytes([_NPY_DOUBLE] * 3):
            continue
        loop, loop_data = _read_pointer(functions + i * _POINTER), _read_pointer(data + i * _POINTER)
        if loop and np.array_equal(_runs(loop, loop_data, probe).view(np.int64), expected.view(np.int64)):
            return loop, loop_data
    return None
