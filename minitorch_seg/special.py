"""Special functions NumPy lacks, on every backend: ``erf``, with a fast float32 path on the host.

GELU needs the error function. SciPy has it on the host and cupyx on the GPU; for float32 host
arrays a rational approximation here is six times faster than SciPy's, at float32 accuracy.

>>> import numpy
>>> x = numpy.array([-1.0, 0.0, 0.5], dtype=numpy.float32)
>>> bool(numpy.abs(erf(x) - erf(x.astype(numpy.float64))).max() < 1e-6)
True
"""
import importlib

import numpy


def erf(x):
    """The error function, elementwise, on any backend (SciPy on the host, cupyx on the GPU)."""
    if not isinstance(x, (numpy.ndarray, numpy.generic)):          # a CuPy array
        return importlib.import_module("cupyx.scipy.special").erf(x)
    if x.dtype == numpy.float32:
        return _erf_float32(x)
    from scipy.special import erf as scipy_erf  # a NumPy ufunc: StrictArray dispatches it too
    return scipy_erf(x)


# erf(x) ~ x P(x^2) / Q(x^2) on [-4, 4] (erf is +-1 in float32 beyond), Eigen's float32
# coefficients: max error 4.5e-7 against the float64 erf. SciPy's float32 erf goes through a
# scalar float64 routine at ~15 ns per element, which made GELU half of a Swin block's time;
# this runs at ~2.5 ns, in cache-sized chunks (each pass of the polynomial stays in L2).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)
_ERF_CHUNK = 1 << 15


def _erf_float32(x):
    """erf of a float32 host array (NumPy or strict), by the rational approximation above."""
    f32 = numpy.float32
    flat = x.reshape(-1)
    out = numpy.empty_like(flat)               # a strict array for a strict x
    for start in range(0, flat.size, _ERF_CHUNK):
        t = numpy.maximum(flat[start:start + _ERF_CHUNK], f32(-4))       # clip to [-4, 4] (numpy.clip's
        numpy.minimum(t, f32(4), out=t)                                      # Python wrapper costs more)
        t2 = t * t
        p = t2 * f32(_ERF_P[0])
        for c in _ERF_P[1:-1]:
            p += f32(c)
            p *= t2
        p += f32(_ERF_P[-1])
        p *= t
        q = t2 * f32(_ERF_Q[0])
        for c in _ERF_Q[1:-1]:
            q += f32(c)
            q *= t2
        q += f32(_ERF_Q[-1])
        numpy.divide(p, q, out=out[start:start + _ERF_CHUNK])
    return out.reshape(x.shape)
