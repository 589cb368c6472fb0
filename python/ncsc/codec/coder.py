"""Compress and decompress images with an :class:`NcscModel`, deterministically and in wavefronts.

The probability path runs in exact integer arithmetic (:mod:`.fixed`), so the
encoder evaluates the context model in one full pass while the decoder evaluates it
one wavefront at a time: with a 5x5 causal mask, position (r, c) depends only on
positions with a smaller ``c + 3 r``, so each wavefront ``c + 3 r = t`` is decoded
in one network step (about 140 steps for a 768x512 image instead of 1536).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
import torch.nn.functional as F

from . import bitstream as bs
from .entropy import RansStream, decode_z, encode_values, quantize_params
from .fixed import FA, FixedConv, FixedSequential, to_fixed
from .model import NcscModel

log = logging.getLogger(__name__)
ORDERS = ("wavefront", "raster")
SYNTH_THREADS = 2
Y_LIMIT = 1 << 15
PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT_MAX_PIXELS = bs.DEFAULT_MAX_PIXELS


def native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AMX or AVX512-BF16): elsewhere bf16 is emulated, slower."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # a torch without these probes
        return False


def resolve_precision(precision: str = "auto") -> str:
    """``auto`` means ``$NCSC_PRECISION`` when set, else bf16 on CPUs that run it natively, else fp32."""
    if precision == "auto":
        precision = os.environ.get("NCSC_PRECISION", "auto")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        precision = "bf16" if native_bf16() else "fp32"
    return precision


def coding_order(h: int, w: int, order: str = "wavefront") -> list[tuple[np.ndarray, np.ndarray]]:
    """Steps of positions (rows, cols) in decoding order."""
    if order == "raster":
        return [(np.array([r]), np.array([c])) for r in range(h) for c in range(w)]
    if order != "wavefront":
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    rows, cols = np.mgrid[0:h, 0:w]
    t = (cols + 3 * rows).ravel()
    steps = []
    for k in range(int(t.max()) + 1):
        sel = np.flatnonzero(t == k)
        if sel.size:
            steps.append((rows.ravel()[sel], cols.ravel()[sel]))
    return steps


class NcscCodec:
    """CompressAI-style ``compress``/``decompress`` around a trained model."""

    def __init__(self, model: NcscModel, model_id: int = 1, metric: str = "mse", quality: int = 1,
                 precision: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS):
        # The analysis and synthesis transforms (most of the time) may run in bf16: the bits
        # never depend on it (the probability path below is exact integer arithmetic), only the
        # encoder's choice of latents and the decoded pixels, by a level or two.
        self.precision = resolve_precision(precision)
        self.model = model.eval()
        if self.precision == "bf16":
            self.model = model.to(memory_format=torch.channels_last)  # only with bf16 (see train.py)
        self.model_id, self.metric, self.quality = model_id, metric, quality
        self.max_pixels = max_pixels
        self.K, self.M = model.K, model.M
        self.hs = FixedSequential(model.h_s)
        cp = model.context_prediction
        self.ctx = FixedConv(cp, weight=cp.weight * cp.mask)
        self.ctx_matrix = self.ctx.matrix()
        self.ep = FixedSequential(model.entropy_parameters)
        self.ep_mats = [(op, op.matrix()) if isinstance(op, FixedConv) else (op, None) for op in self.ep.ops]

    def _transform(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = net(x.float().contiguous(memory_format=torch.channels_last))
            return out.float().contiguous()
        return net(x.float())

    # -- probability path ------------------------------------------------------------------
    def _head(self, hs_cols: torch.Tensor, ctx_cols: torch.Tensor) -> np.ndarray:
        """Entropy parameters for a set of positions: (n, 2M) + (n, 2M) fixed -> (n, 3KM) int."""
        a = torch.cat((hs_cols, ctx_cols), dim=1)
        for op, mat in self.ep_mats:
            a = op.finish(a @ mat) if mat is not None else op(a)
        return a.numpy().astype(np.int64)

    def full_params(self, hs: torch.Tensor, y_hat: torch.Tensor, rows, cols) -> np.ndarray:
        """Encoder side: integer head outputs at (rows, cols) from one pass over the whole latent."""
        ctx = self.ctx(to_fixed(y_hat))[0]
        return self._head(hs[:, rows, cols].t(), ctx[:, rows, cols].t())

    def step_params(self, hs: torch.Tensor, y_pad: torch.Tensor, r: torch.Tensor, c: torch.Tensor) -> np.ndarray:
        """Decoder side: the same outputs for a few positions, from the decoded part of the latent only.

        ``y_pad`` is the latent at 2**FA with a 2-pixel zero border (undecoded positions are 0).
        """
        ar = torch.arange(5)
        patches = y_pad[:, r[:, None, None] + ar[None, :, None], c[:, None, None] + ar[None, None, :]]
        patches = patches.permute(1, 0, 2, 3).reshape(r.numel(), -1)
        return self._head(hs[:, r, c].t(), self.ctx.finish(patches @ self.ctx_matrix))

    def _params(self, raw: np.ndarray):
        w, s, mu = quantize_params(raw, FA, self.K, self.M)
        return w.reshape(-1, self.K), s.reshape(-1, self.K), mu.reshape(-1, self.K)

    # -- public API ------------------------------------------------------------------------
    @torch.no_grad()
    def compress(self, x: torch.Tensor, order: str = "wavefront", reconstruct: bool = False) -> dict:
        """x: (1, 3, H, W) in [0, 1]. Returns {"bitstream", "strings", "shape", "x_hat"?, "y_hat", "z_hat"}."""
        if x.dim() != 4 or x.shape[:2] != (1, 3):
            raise ValueError(f"expected a (1, 3, H, W) image tensor, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if not (0 < h <= bs.MAX_SIDE and 0 < w <= bs.MAX_SIDE):
            raise ValueError(f"image size {w}x{h} is outside 1..{bs.MAX_SIDE} pixels per side")
        zh, zw = bs.latent_shape_for(h, w)
        xp = F.pad(x.float(), (0, zw * 64 - w, 0, zh * 64 - h), mode="replicate")
        m = self.model
        y = self._transform(m.g_a, xp)
        # CompressAI's z encoder loops forever on values near 2**30: keep z where the coder works
        z = torch.nan_to_num(self._transform(m.h_a, y)).clamp(-Y_LIMIT, Y_LIMIT)
        z_strings = m.entropy_bottleneck.compress(z)
        z_hat = m.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        y_hat = torch.round(y).clamp(-Y_LIMIT, Y_LIMIT)
        hs = self.hs(to_fixed(z_hat))[0]
        steps = coding_order(y.shape[2], y.shape[3], order)
        rows = np.concatenate([s[0] for s in steps])
        cols = np.concatenate([s[1] for s in steps])
        raw = self.full_params(hs, y_hat, rows, cols)
        wq, sq, mq = self._params(raw)
        values = y_hat[0][:, rows, cols].t().reshape(-1).numpy().astype(np.int64)
        y_string = encode_values(values, wq, sq, mq)
        header = bs.Header(self.model_id, self.metric, self.quality, order, h, w, (zh, zw),
                           len(z_strings[0]), len(y_string))
        out = {"bitstream": bs.pack(header, z_strings[0], y_string), "strings": [[y_string], z_strings],
               "shape": tuple(z.shape[-2:]), "y_hat": y_hat, "z_hat": z_hat}
        if reconstruct:
            out["x_hat"] = self._synthesize(y_hat, h, w)
        return out

    def _synthesize(self, y_hat: torch.Tensor, h: int, w: int) -> torch.Tensor:
        # Float convolutions round differently with a different number of threads (a few pixels
        # move by one level), so the synthesis always runs with the same thread team, whatever
        # the caller set: the encoder's reconstruction and the decoder's output are then
        # bit-identical on the same software stack. (The probability path needs no such care.)
        before = torch.get_num_threads()
        torch.set_num_threads(SYNTH_THREADS)
        try:
            return self._transform(self.model.g_s, y_hat).clamp_(0, 1)[..., :h, :w]
        finally:
            torch.set_num_threads(before)

    @torch.no_grad()
    def decompress(self, data: bytes, max_pixels: int | None = None) -> dict:
        """Decode a bitstream made by :meth:`compress`; raises BitstreamError on bad input.

        Never reads outside the strings (both are decoded by bounded decoders of our own), and
        refuses an image above ``max_pixels`` (default: the codec's) before any allocation."""
        header, z_string, y_string = bs.unpack(data)
        bs.check_pixels(header, self.max_pixels if max_pixels is None else max_pixels)
        if (header.model_id, header.metric, header.quality) != (self.model_id, self.metric, self.quality):
            raise bs.BitstreamError(f"stream was made by model {header.model_id}/{header.metric}/q{header.quality}, "
                                    f"this decoder is {self.model_id}/{self.metric}/q{self.quality}")
        try:
            return self._decode(header, z_string, y_string)
        except OverflowError as exc:  # latents too large for the exact integer path: not from an encoder
            raise bs.BitstreamError(f"latents out of range (corrupted stream): {exc}") from exc
        except ValueError as exc:
            if isinstance(exc, bs.BitstreamError):
                raise
            raise bs.BitstreamError(str(exc)) from exc

    def _decode(self, header: bs.Header, z_string: bytes, y_string: bytes) -> dict:
        m = self.model
        zh, zw = header.z_shape
        z_hat = decode_z(m.entropy_bottleneck, z_string, (zh, zw))
        hs = self.hs(to_fixed(z_hat))[0]
        hy, wy = 4 * zh, 4 * zw
        y_pad = torch.zeros((self.M, hy + 4, wy + 4), dtype=torch.float64)
        stream = RansStream(y_string)
        for rows, cols in coding_order(hy, wy, header.order):
            r = torch.from_numpy(rows)
            c = torch.from_numpy(cols)
            raw = self.step_params(hs, y_pad, r, c)
            vals = stream.decode(*self._params(raw))
            if np.abs(vals).max() > Y_LIMIT:  # the encoder clamps: larger is corruption
                raise bs.BitstreamError("latent value out of range (corrupted stream)")
            y_pad[:, r + 2, c + 2] = torch.from_numpy(vals.reshape(r.numel(), self.M).T * float(2**FA))
        if stream.state[1] != len(y_string):
            raise bs.BitstreamError("latent stream has trailing bytes (corrupted)")
        y_hat = (y_pad[:, 2:-2, 2:-2] * 2.0**-FA).unsqueeze(0)
        return {"x_hat": self._synthesize(y_hat, header.height, header.width), "y_hat": y_hat, "header": header}
