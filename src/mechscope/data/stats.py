"""Streaming statistics of activations: fixed histogram bins, mergeable moments, sortable keys.

Everything here merges exactly (counts, top-k keys, hash-priority samples) or to float64
rounding (moments), so that a collation split into batches, checkpoints or workers gives the
result of one pass.

Histogram bins are fixed and the same for every unit: the sign of the activation, its octave
and which half of the octave it falls in, read straight from the float32 bits (``bits >> 22``
keeps the sign, the 8 exponent bits and the top mantissa bit). Edges are ``±2^e`` and
``±1.5·2^e`` for ``e`` in [-16, 15], with one bin for each tail beyond ``±2^16``, one for
``(-2^-16, 0]`` (zero included) and one for ``(0, 2^-16)``. No pass over the data is needed to
choose them, they cover activations of any scale with ~20% relative resolution, and binning a
value costs one shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# ----- histogram bins ---------------------------------------------------------------------------
LOW_CODE, HIGH_CODE = 2 * (127 - 16), 2 * (127 + 16)  # magnitude codes (exp << 1 | m1) of 2^-16, 2^16
N_MAG = HIGH_CODE - LOW_CODE  # 64 half-octave bins per sign
N_BINS = 2 * N_MAG + 4
ZERO_BIN = N_MAG + 1  # (-2^-16, 0]: negative tiny values, ±0 and positive subnormals
FIRST_POSITIVE_BIN = N_MAG + 2  # (0, 2^-16): activations above this bin's lower edge are "> 0"
N_CODES = 1024  # values of (float32 bits >> 22) + 512


def _code_to_bin() -> torch.Tensor:
    """(1024,) long: compact bin of each ``(bits >> 22) + 512`` code, bins ordered by value."""
    lut = torch.empty(N_CODES, dtype=torch.long)
    for idx in range(N_CODES):
        negative, c = idx < 512, idx % 512  # c = exponent << 1 | top mantissa bit
        if negative:
            if c >= HIGH_CODE:
                lut[idx] = 0
            elif c >= LOW_CODE:
                lut[idx] = 1 + (HIGH_CODE - 1 - c)
            else:
                lut[idx] = ZERO_BIN
        elif c < 2:  # +0.0 and subnormals
            lut[idx] = ZERO_BIN
        elif c < LOW_CODE:
            lut[idx] = FIRST_POSITIVE_BIN
        elif c < HIGH_CODE:
            lut[idx] = FIRST_POSITIVE_BIN + 1 + (c - LOW_CODE)
        else:
            lut[idx] = N_BINS - 1
    return lut


CODE_TO_BIN = _code_to_bin()


def _code_value(c: int) -> float:
    """Lower magnitude edge of magnitude code ``c``: 2^e or 1.5·2^e."""
    return float(2.0 ** ((c >> 1) - 127) * (1.5 if c & 1 else 1.0))


def bin_edges() -> list[tuple[float, float]]:
    """(low, high) of every bin, in bin order; the tails are open (±inf)."""
    edges: list[tuple[float, float]] = [(-np.inf, -(2.0**16))]
    for c in range(HIGH_CODE - 1, LOW_CODE - 1, -1):
        edges.append((-_code_value(c + 1), -_code_value(c)))
    edges.append((-(2.0**-16), 0.0))
    edges.append((0.0, 2.0**-16))
    for c in range(LOW_CODE, HIGH_CODE):
        edges.append((_code_value(c), _code_value(c + 1)))
    edges.append((2.0**16, np.inf))
    return edges


def codes(x: torch.Tensor) -> torch.Tensor:
    """Histogram code in [0, 1024) of every float32 value (same shape, int64)."""
    return (x.view(torch.int32) >> 22).long().add_(512)


def bins_of(x: torch.Tensor) -> torch.Tensor:
    """Compact bin in [0, N_BINS) of every float32 value (same shape, int64)."""
    return CODE_TO_BIN[codes(x)]


# ----- keys: one int64 per (value, window) that sorts like (value desc, window asc) -------------
WINDOW_BITS = 32
_LOW = (1 << WINDOW_BITS) - 1
EMPTY_TOP = torch.iinfo(torch.int64).min  # an empty top-k slot: every real key beats it
EMPTY_SAMPLE = torch.iinfo(torch.int64).max  # an empty sample slot: every real priority beats it


def top_keys(values: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Keys whose order is activation descending, then window ascending (ties broken exactly).

    ``values`` float32 (..., n); ``windows`` int64 broadcastable to it.
    """
    bits = values.contiguous().view(torch.int32)
    ordered = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).long()  # monotone in the float value
    return ordered * (1 << WINDOW_BITS) + (_LOW - windows)


def decode_top(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values float32, windows int64) of top keys; empty slots decode to window -1."""
    ordered = (keys >> WINDOW_BITS).to(torch.int32)
    bits = torch.where(ordered >= 0, ordered, ordered ^ 0x7FFFFFFF)
    windows = _LOW - (keys & _LOW)
    return bits.view(torch.float32), torch.where(keys == EMPTY_TOP, -1, windows)


_MASK31 = (1 << 31) - 1


def sample_keys(windows: torch.Tensor, units: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A pseudo-random priority for every (window, unit), window in the low bits (smallest wins).

    Keeping the ``s`` smallest priorities of a unit is a uniform sample without replacement of
    its windows, and it merges exactly: the smallest of a union is the smallest of the parts.
    ``windows`` (n, 1) and ``units`` (1, u) int64, both < 2^24.
    """
    x = (windows * 0x9E3779B1 + units * 0x85EBCA77 + seed * 0x27D4EB2F) & _MASK31
    x = x ^ (x >> 15)
    x = (x * 0x2C1B3C6D) & _MASK31
    x = x ^ (x >> 12)
    x = (x * 0x297A2D39) & _MASK31
    x = x ^ (x >> 15)
    return x * (1 << WINDOW_BITS) + windows


def sample_windows(keys: torch.Tensor) -> torch.Tensor:
    return torch.where(keys == EMPTY_SAMPLE, -1, keys & _LOW)


# ----- moments ------------------------------------------------------------------------------------
@dataclass
class Moments:
    """Count, mean and central moment sums M2..M4 of every unit (float64), merged with Pébay's
    formulas (Pébay 2008, "Formulas for robust, one-pass parallel computation of covariances and
    arbitrary-order statistical moments", eq. 3.1), which stay accurate when the mean is large."""

    n: float
    mean: torch.Tensor
    m2: torch.Tensor
    m3: torch.Tensor
    m4: torch.Tensor

    @classmethod
    def zeros(cls, *shape: int) -> Moments:
        z = [torch.zeros(shape, dtype=torch.float64) for _ in range(4)]
        return cls(0.0, *z)

    @classmethod
    def of(cls, y: torch.Tensor) -> Moments:
        """Moments of the rows of ``y`` (n, units): centred on the batch mean, in float32."""
        mean = y.mean(0)
        d = y - mean
        d2 = d * d
        m2 = d2.sum(0)
        m3 = (d2 * d).sum(0)
        m4 = d2.square_().sum(0)
        return cls(float(y.shape[0]), mean.double(), m2.double(), m3.double(), m4.double())

    def merge_(self, b: Moments) -> None:
        """Add the moments of ``b`` (same units, other rows) into self."""
        na, nb = self.n, b.n
        if nb == 0:
            return
        if na == 0:  # copy: the formulas would round b.mean through (b.mean / n) * n
            self.n, self.mean, self.m2, self.m3, self.m4 = (
                b.n,
                b.mean.clone(),
                b.m2.clone(),
                b.m3.clone(),
                b.m4.clone(),
            )
            return
        n = na + nb
        delta = b.mean - self.mean
        d_n = delta / n
        m4 = (
            self.m4
            + b.m4
            + delta * d_n**3 * na * nb * (na * na - na * nb + nb * nb)
            + 6 * d_n * d_n * (na * na * b.m2 + nb * nb * self.m2)
            + 4 * d_n * (na * b.m3 - nb * self.m3)
        )
        m3 = self.m3 + b.m3 + delta * d_n * d_n * na * nb * (na - nb) + 3 * d_n * (na * b.m2 - nb * self.m2)
        self.m2 = self.m2 + b.m2 + delta * d_n * na * nb
        self.m3, self.m4 = m3, m4
        self.mean = self.mean + d_n * nb
        self.n = n

    def summary(self) -> dict[str, torch.Tensor]:
        """mean, population variance, skewness and excess kurtosis (NaN where the variance is 0)."""
        n = self.n
        var = self.m2 / n
        with np.errstate(all="ignore"):
            skew = (n**0.5) * self.m3 / self.m2.pow(1.5)
            kurt = n * self.m4 / (self.m2 * self.m2) - 3.0
        return {"mean": self.mean, "var": var, "skew": skew, "kurtosis": kurt}
