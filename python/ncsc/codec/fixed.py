"""Exact integer evaluation of the probability path (hyper-synthesis, context model, entropy parameters).

Why: the entropy decoder must reproduce the encoder's probabilities bit for bit, or
one differing float wrecks the image. Here weights and activations are integers
(fixed point, activations scaled by 2**FA) held in float64. Every product and
partial sum is an integer below 2**53, so the result does not depend on the
summation order that a thread count, a tensor shape or a BLAS kernel picks: the
encoder's single full pass and the decoder's wavefront steps give the same numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

FA = 12  # fractional bits of activations
W_BITS = 15  # weights are scaled so that max |w| < 2**W_BITS
EXACT_LIMIT = 2.0**52


class FixedConv:
    """One conv layer with integer weights; ``__call__`` maps activations at 2**FA to 2**FA."""

    def __init__(self, conv: nn.Conv2d, weight: torch.Tensor | None = None):
        w = (conv.weight if weight is None else weight).detach().double()
        wmax = float(w.abs().max()) or 1.0
        self.fw = W_BITS - math.ceil(math.log2(wmax + 1e-30))
        self.w = torch.round(w * 2.0**self.fw)
        b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        self.b = torch.round(b * 2.0 ** (self.fw + FA))
        self.padding = conv.padding
        self.stride = conv.stride
        self.fan_in = w[0].numel()

    def matrix(self) -> torch.Tensor:
        """Weights as a (fan_in, out) matrix, for patch-wise evaluation."""
        return self.w.reshape(self.w.shape[0], -1).t().contiguous()

    def finish(self, acc: torch.Tensor) -> torch.Tensor:
        """Add the bias and scale an integer accumulator back to 2**FA (round half to even: exact)."""
        return torch.round((acc + self.b) * 2.0**-self.fw)

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        acc = F.conv2d(a, self.w, None, stride=self.stride, padding=self.padding)
        return torch.round((acc + self.b.view(1, -1, 1, 1)) * 2.0**-self.fw)


def leaky(a: torch.Tensor, slope: float = 0.01) -> torch.Tensor:
    return torch.where(a >= 0, a, torch.round(a * slope))


class FixedSequential:
    """Integer twin of an nn.Sequential made of Conv2d, LeakyReLU and PixelShuffle."""

    def __init__(self, seq: nn.Module):
        self.ops = []
        for m in _flatten(seq):
            if isinstance(m, nn.Conv2d):
                self.ops.append(FixedConv(m))
            elif isinstance(m, nn.LeakyReLU):
                self.ops.append(lambda a, s=m.negative_slope: leaky(a, s))
            elif isinstance(m, nn.PixelShuffle):
                self.ops.append(lambda a, r=m.upscale_factor: F.pixel_shuffle(a, r))
            else:
                raise TypeError(f"no exact integer form for {type(m).__name__}")

    @property
    def convs(self) -> list[FixedConv]:
        return [op for op in self.ops if isinstance(op, FixedConv)]

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            a = op(a)
            if a.abs().max() * 2.0**W_BITS * 4096 > EXACT_LIMIT:  # keep every partial sum exact
                raise OverflowError("activation too large for exact integer evaluation")
        return a


def _flatten(m: nn.Module):
    if isinstance(m, nn.Sequential):
        for c in m:
            yield from _flatten(c)
    else:
        yield m


def to_fixed(x: torch.Tensor) -> torch.Tensor:
    """Float tensor to integer activations at 2**FA (float64)."""
    return torch.round(x.double() * 2.0**FA)
