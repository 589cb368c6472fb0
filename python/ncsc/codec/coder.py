"""Compress and decompress images with an :class:`NcscModel`, deterministically and in wavefronts.

The probability path runs in exact integer arithmetic (:mod:`.fixed`), so the
encoder evaluates the context model in one full pass while the decoder evaluates it
one wavefront at a time: with a 5x5 causal mask, position (r, c) depends only on
positions with a smaller ``c + 3 r``, so each wavefront ``c + 3 r = t`` is decoded
in one network step (about 140 steps for a 768x512 image instead of 1536).
"""

from __future__ import annotations

import functools
import logging
import os
import threading

import numpy as np
import torch
import torch.nn.functional as F

from . import bitstream as bs
from .entropy import MEAN_STEPS, RansStream, decode_z, encode_values, quantize_params
from .entropy import warm_up as _warm_entropy
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


def _patches(y_pad: torch.Tensor, r: torch.Tensor, c: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """The causal neighbours (offsets dy, dx in the 5x5 window) of positions (r, c) of a latent
    with a 2-pixel zero border, one row per position: what the masked context convolution sees."""
    p = y_pad[:, r[:, None] + dy[None, :], c[:, None] + dx[None, :]]
    return p.permute(1, 0, 2).reshape(r.numel(), -1)


def _exclusive(method):
    """One compress or decompress at a time per codec. A flowgraph's Image Source and Decoder
    Sink share one codec (``load_named_codec``); run side by side, each with torch's full thread
    team on the same cores, they slowed each other down (the first picture of the loopback GUI
    came 1.5 s later while the next image was being encoded); one after the other, each runs
    at full speed and the total is the same."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._busy:
            return method(self, *args, **kwargs)

    return run


class NcscCodec:
    """CompressAI-style ``compress``/``decompress`` around a trained model."""

    def __init__(self, model: NcscModel, model_id: int = 1, metric: str = "mse", quality: int = 1,
                 precision: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS):
        # The analysis and synthesis transforms (most of the time) may run in bf16: the bits
        # never depend on it (the probability path below is exact integer arithmetic), only the
        # encoder's choice of latents and the decoded pixels, by a level or two.
        self.precision = resolve_precision(precision)
        self._busy = threading.Lock()
        # channels_last: the transforms' convolutions run ~20 % faster in it (fp32 and bf16,
        # measured on AMD EPYC). Inference only: it is the backward pass that channels_last
        # crashes on some CPUs (train.py and cpuprobe keep training off it there).
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.model_id, self.metric, self.quality = model_id, metric, quality
        self.max_pixels = max_pixels
        self.K, self.M = model.K, model.M
        self.hs = FixedSequential(model.h_s)
        cp = model.context_prediction
        self.ctx = FixedConv(cp, weight=cp.weight * cp.mask)
        # The decoder's context product over the mask's 12 causal taps only, not all 25: the
        # weight matrix streamed at every wavefront step halves (7 MB instead of 15 in float64),
        # and the integer result is the same (the dropped terms are exact zeros).
        taps = torch.nonzero(cp.mask.reshape(-1, 25).abs().sum(0) > 0).flatten()
        self.ctx_dy, self.ctx_dx = taps // 5, taps % 5
        w = self.ctx.w
        self.ctx_matrix = w.reshape(w.shape[0], w.shape[1], 25)[:, :, taps].reshape(w.shape[0], -1).t().contiguous()
        self.ep = FixedSequential(model.entropy_parameters)
        self.ep_mats = [(op, op.matrix()) if isinstance(op, FixedConv) else (op, None) for op in self.ep.ops]

    def warm_up(self) -> None:
        """Load the coder's compiled kernels and tables now (see :func:`.entropy.warm_up`); safe
        beside a running compress or decompress, which it neither waits for nor blocks."""
        _warm_entropy(self.K)

    def _transform(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = net(x.float().contiguous(memory_format=torch.channels_last))
            return out.float().contiguous()
        return net(x.float().contiguous(memory_format=torch.channels_last)).contiguous()

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
        ctx = _patches(y_pad, r, c, self.ctx_dy, self.ctx_dx) @ self.ctx_matrix
        return self._head(hs[:, r, c].t(), self.ctx.finish(ctx))

    def _params(self, raw: np.ndarray):
        w, s, mu = quantize_params(raw, FA, self.K, self.M)
        return w.reshape(-1, self.K), s.reshape(-1, self.K), mu.reshape(-1, self.K)

    # -- public API ------------------------------------------------------------------------
    @torch.no_grad()
    @_exclusive
    def compress(self, x: torch.Tensor, order: str = "wavefront", reconstruct: bool = False,
                 slices: tuple[int, int] | None = None, page: int = 180, head_copies: int = 2,
                 align: bool = False) -> dict:
        """x: (1, 3, H, W) in [0, 1]. Returns {"bitstream", "strings", "shape", "x_hat"?, "y_hat", "z_hat"}.

        ``slices=(rows, cols)``: code the latent in tiles of that many latent rows and columns,
        each its own string with the context model kept inside its tile (bitstream version 2,
        ``page`` bytes per page: the framer's block payload); a link that loses blocks then
        loses only the tiles on them, which the decoder conceals. ``head_copies=1`` writes the
        head once, for a link that protects its pages itself (``bitstream.FLAG_HEAD_ONCE``), with
        the slices starting in its last page (``FLAG_HEAD_PACKED``). The slices follow each
        other (``FLAG_UNALIGNED``); ``align=True`` starts a slice that would straddle a page
        boundary but fits in a page on the next page instead (padding: 3 % more bits on Kodak,
        and no better below the LDPC threshold, docs/results.md)."""
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
        if slices is not None:
            return self._compress_sliced(x, y_hat, z_hat, hs, z_strings[0], order, slices, page, reconstruct,
                                         head_copies, align)
        y_string = self._encode_tile(hs, y_hat, order)
        header = bs.Header(self.model_id, self.metric, self.quality, order, h, w, (zh, zw),
                           len(z_strings[0]), len(y_string))
        out = {"bitstream": bs.pack(header, z_strings[0], y_string), "strings": [[y_string], z_strings],
               "shape": tuple(z.shape[-2:]), "y_hat": y_hat, "z_hat": z_hat}
        if reconstruct:
            out["x_hat"] = self._synthesize(y_hat, h, w)
        return out

    def _encode_tile(self, hs: torch.Tensor, tile: torch.Tensor, order: str) -> bytes:
        """One rANS string for a tile of the latent (the whole latent: bitstream 1), in coding
        order, the context model seeing zeros beyond the tile (its own zero padding)."""
        steps = coding_order(tile.shape[2], tile.shape[3], order)
        rows = np.concatenate([st[0] for st in steps])
        cols = np.concatenate([st[1] for st in steps])
        raw = self.full_params(hs, tile, rows, cols)
        values = tile[0][:, rows, cols].t().reshape(-1).numpy().astype(np.int64)
        return encode_values(values, *self._params(raw))

    def _compress_sliced(self, x, y_hat, z_hat, hs, z_string, order, slices, page, reconstruct,
                         head_copies: int = 2, align: bool = False) -> dict:
        th, tw = (int(v) for v in slices)
        if not (0 < th < 256 and 0 < tw < 256) or not bs.MIN_PAGE <= int(page) < 1 << 16:
            raise ValueError(f"slices must be 1..255 latent rows and columns and page {bs.MIN_PAGE}..65535 bytes")
        h, w = x.shape[-2:]
        strings = []
        for r0, r1, c0, c1 in bs.tile_grid(y_hat.shape[2], y_hat.shape[3], th, tw):
            strings.append(self._encode_tile(hs[:, r0:r1, c0:c1], y_hat[:, :, r0:r1, c0:c1], order))
        if max(len(st) for st in strings) >= 1 << 16:
            raise ValueError("a slice is longer than 65535 bytes: use smaller slices")
        zh, zw = z_hat.shape[-2:]
        header = bs.SlicedHeader(self.model_id, self.metric, self.quality, order, h, w, (zh, zw), len(z_string),
                                 (th, tw), int(page), tuple(len(st) for st in strings), int(head_copies),
                                 packed=int(head_copies) == 1, aligned=align)
        out = {"bitstream": bs.pack_sliced(header, z_string, strings), "strings": [strings, [z_string]],
               "shape": (zh, zw), "y_hat": y_hat, "z_hat": z_hat}
        if reconstruct:
            out["x_hat"] = self._synthesize(y_hat, h, w)
        return out

    def _mean_at(self, hs: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
        """The hyperprior's prediction of the latent at (rows, cols): the mixture mean with no
        context (what the context model sees at the start of a tile). (M, n) float64."""
        ctx0 = self.ctx(torch.zeros((1, self.M, 1, 1), dtype=torch.float64))[0][:, 0, 0]
        raw = self._head(hs[:, rows, cols].t(), ctx0[None, :].expand(rows.size, -1))
        w, _, mu = self._params(raw)
        mean = (w * mu).sum(axis=1) / np.maximum(w.sum(axis=1), 1) / MEAN_STEPS
        return torch.from_numpy(mean.reshape(rows.size, self.M).T.copy())

    def _conceal(self, hs: torch.Tensor, y: torch.Tensor, known: np.ndarray) -> None:
        """Fill the latent where ``known`` is False (lost tiles), in place: the hyperprior's
        prediction plus the decoded tiles' residual (latent minus prediction) carried in from
        around the hole by harmonic interpolation. The prediction alone misses what the
        hyperprior does not know; the residual is smooth across tile edges, so its neighbours
        say much of it: +1.7-2.1 dB over the prediction alone with 10-30 % of 4x24 tiles lost
        (6 Kodak images, a slice-trained checkpoint). With nothing decoded, the prediction."""
        lost = ~known
        ring = np.zeros_like(known)  # decoded positions next to a lost one: the boundary values
        ring[1:] |= lost[:-1]
        ring[:-1] |= lost[1:]
        ring[:, 1:] |= lost[:, :-1]
        ring[:, :-1] |= lost[:, 1:]
        ring &= known
        lr, lc = np.nonzero(lost)
        br, bc = np.nonzero(ring)
        mean = self._mean_at(hs, np.concatenate([lr, br]), np.concatenate([lc, bc]))
        fill = mean[:, : lr.size]
        if br.size:
            resid = torch.zeros((self.M,) + known.shape, dtype=torch.float64)
            resid[:, br, bc] = y[:, br, bc] - mean[:, lr.size :]
            fill = fill + torch.from_numpy(harmonic_fill(resid.numpy(), known))[:, lr, lc]
        y[:, lr, lc] = fill

    def _decode_sliced(self, header: bs.SlicedHeader, z_string: bytes, slices: list) -> dict:
        zh, zw = header.z_shape
        z_hat = decode_z(self.model.entropy_bottleneck, z_string, (zh, zw))
        hs = self.hs(to_fixed(z_hat))[0]
        y = torch.zeros((self.M, 4 * zh, 4 * zw), dtype=torch.float64)
        tiles = header.tiles()
        known = np.zeros(y.shape[1:], dtype=bool)
        damaged = self._decode_tiles(hs, y, tiles, slices, header.order, known)
        lost, partial = [], []  # concealed whole; cut off, their beginning decoded
        for i, (r0, r1, c0, c1) in enumerate(tiles):
            if i in damaged or not known[r0:r1, c0:c1].any():
                lost.append(i)
            elif not known[r0:r1, c0:c1].all():
                partial.append(i)
        boxes = []  # latent rows and columns of what is concealed, per slice
        for i in lost + partial:
            r0, r1, c0, c1 = tiles[i]
            rr, cc = np.nonzero(~known[r0:r1, c0:c1])
            boxes.append((r0 + int(rr.min()), r0 + int(rr.max()) + 1, c0 + int(cc.min()), c0 + int(cc.max()) + 1))
        if not known.all():
            self._conceal(hs, y, known)
        y_hat = y.unsqueeze(0)
        return {"x_hat": self._synthesize(y_hat, header.height, header.width), "y_hat": y_hat, "header": header,
                "concealed": float(np.mean(~known)), "lost_slices": lost, "partial_slices": partial,
                "concealed_boxes": boxes}

    def _decode_tiles(self, hs: torch.Tensor, y: torch.Tensor, tiles: list, strings: list, order: str,
                      known: np.ndarray | None = None) -> dict:
        """Decode the tiles' strings into ``y``; returns {tile index: why} for the strings that are
        missing (None) or turned out damaged (their tiles are left as they were). A
        :class:`~.bitstream.SlicePrefix` decodes up to where it was cut. ``known`` (the latent's
        rows and columns), when given, marks every position decoded. The tiles are independent, so
        they advance together: one network step per wavefront for all of them (a tile's
        wavefronts, not the image's, set the count; bitstream 1 is one tile)."""
        damaged, streams, cut, decoded = {}, [], set(), {}
        for j, st in enumerate(strings):
            try:
                streams.append(RansStream(st) if st is not None else None)
            except ValueError as exc:
                damaged[j] = str(exc)
                streams.append(None)
            if st is None:
                damaged[j] = "lost"
        pads = [torch.zeros((self.M, r1 - r0 + 4, c1 - c0 + 4), dtype=torch.float64) for r0, r1, c0, c1 in tiles]
        orders = [coding_order(r1 - r0, c1 - c0, order) for r0, r1, c0, c1 in tiles]
        for t in range(max((len(o) for o in orders), default=0)):
            live = [j for j in range(len(tiles)) if t < len(orders[j]) and j not in damaged and j not in cut]
            if not live:
                continue
            steps = [(torch.from_numpy(orders[j][t][0]), torch.from_numpy(orders[j][t][1])) for j in live]
            hs_cols = [hs[:, r + tiles[j][0], c + tiles[j][2]].t() for j, (r, c) in zip(live, steps, strict=True)]
            patches = [_patches(pads[j], r, c, self.ctx_dy, self.ctx_dx) for j, (r, c) in zip(live, steps, strict=True)]
            raw = self._head(torch.cat(hs_cols), self.ctx.finish(torch.cat(patches) @ self.ctx_matrix))
            w, s, mu = self._params(raw)
            at = 0
            for j, (r, c) in zip(live, steps, strict=True):
                n = r.numel()
                sel = slice(at * self.M, (at + n) * self.M)
                at += n
                prefix = isinstance(strings[j], bs.SlicePrefix)
                try:
                    vals = streams[j].decode(w[sel], s[sel], mu[sel], partial=prefix)
                except ValueError as exc:
                    damaged[j] = str(exc)
                    continue
                if vals.size and np.abs(vals).max() > Y_LIMIT:  # the encoder clamps: larger is corruption
                    damaged[j] = "latent value out of range (corrupted stream)"
                    continue
                if streams[j].ended:  # the prefix ends here: whole positions only
                    cut.add(j)
                    n = vals.size // self.M
                    r, c, vals = r[:n], c[:n], vals[: n * self.M]
                pads[j][:, r + 2, c + 2] = torch.from_numpy(vals.reshape(n, self.M).T * float(2**FA))
                if prefix:
                    if j not in decoded:
                        decoded[j] = np.zeros((tiles[j][1] - tiles[j][0], tiles[j][3] - tiles[j][2]), dtype=bool)
                    decoded[j][r.numpy(), c.numpy()] = True
        for j, ((r0, r1, c0, c1), stream, st) in enumerate(zip(tiles, streams, strings, strict=True)):
            if j in damaged:
                continue
            if j not in cut and not isinstance(st, bs.SlicePrefix) and stream.state[1] != len(st):
                damaged[j] = "latent stream has trailing bytes (corrupted)"
                continue
            y[:, r0:r1, c0:c1] = pads[j][:, 2:-2, 2:-2] * 2.0**-FA
            if known is not None:
                known[r0:r1, c0:c1] = decoded[j] if j in decoded else True
        return damaged

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
    @_exclusive
    def decompress(self, data: bytes, max_pixels: int | None = None, lost_pages=(), page: int | None = None) -> dict:
        """Decode a bitstream made by :meth:`compress`; raises BitstreamError on bad input.

        Never reads outside the strings (both are decoded by bounded decoders of our own), and
        refuses an image above ``max_pixels`` (default: the codec's) before any allocation.
        A sliced (version 2) stream may come with ``lost_pages`` (zeros in ``data``, ``page``
        bytes each): their slices are concealed, and the result says how much
        (``concealed``: share of latent positions, ``lost_slices``)."""
        if bs.is_sliced(bytes(data[:5])) or (lost_pages and page):
            header, z_string, slices = bs.unpack_sliced(data, lost_pages, page)
            self._check(header, max_pixels)
            try:
                return self._decode_sliced(header, z_string, slices)
            except (OverflowError, ValueError) as exc:
                if isinstance(exc, bs.BitstreamError):
                    raise
                raise bs.BitstreamError(f"undecodable hyperprior (corrupted stream): {exc}") from exc
        header, z_string, y_string = bs.unpack(data)
        self._check(header, max_pixels)
        try:
            return self._decode(header, z_string, y_string)
        except OverflowError as exc:  # latents too large for the exact integer path: not from an encoder
            raise bs.BitstreamError(f"latents out of range (corrupted stream): {exc}") from exc
        except ValueError as exc:
            if isinstance(exc, bs.BitstreamError):
                raise
            raise bs.BitstreamError(str(exc)) from exc

    def _check(self, header, max_pixels: int | None) -> None:
        bs.check_pixels(header, self.max_pixels if max_pixels is None else max_pixels)
        if (header.model_id, header.metric, header.quality) != (self.model_id, self.metric, self.quality):
            raise bs.BitstreamError(f"stream was made by model {header.model_id}/{header.metric}/q{header.quality}, "
                                    f"this decoder is {self.model_id}/{self.metric}/q{self.quality}")

    def _decode(self, header: bs.Header, z_string: bytes, y_string: bytes) -> dict:
        m = self.model
        zh, zw = header.z_shape
        z_hat = decode_z(m.entropy_bottleneck, z_string, (zh, zw))
        hs = self.hs(to_fixed(z_hat))[0]
        y = torch.zeros((self.M, 4 * zh, 4 * zw), dtype=torch.float64)
        damaged = self._decode_tiles(hs, y, [(0, 4 * zh, 0, 4 * zw)], [y_string], header.order)
        if damaged:
            raise bs.BitstreamError(damaged[0])
        y_hat = y.unsqueeze(0)
        return {"x_hat": self._synthesize(y_hat, header.height, header.width), "y_hat": y_hat, "header": header}


def harmonic_fill(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``values`` (C, H, W) with the positions where ``known`` is False replaced by the harmonic
    interpolation of the known ones: each the mean of its 4 neighbours inside the grid (one
    sparse solve for all C channels). Only the known positions next to unknown ones matter.
    Nothing known: zeros there."""
    out = np.array(values, dtype=np.float64, copy=True)
    h, w = known.shape
    unknown = np.flatnonzero(~known.ravel())
    if unknown.size == 0:
        return out
    flat = out.reshape(out.shape[0], -1)
    if unknown.size == known.size:
        flat[:] = 0.0
        return out
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import splu

    n = unknown.size
    index = np.full(h * w, -1)
    index[unknown] = np.arange(n)
    r, c = np.divmod(unknown, w)
    known_flat = known.ravel()
    diag = np.zeros(n)
    rhs = np.zeros((n, flat.shape[0]))
    rows, cols = [np.arange(n)], [np.arange(n)]
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        rr, cc = r + dr, c + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        diag += inside
        u = np.flatnonzero(inside)
        nb = rr[inside] * w + cc[inside]
        fixed = known_flat[nb]
        rhs[u[fixed]] += flat[:, nb[fixed]].T
        rows.append(u[~fixed])
        cols.append(index[nb[~fixed]])
    data = np.concatenate([diag, -np.ones(sum(x.size for x in rows[1:]))])
    a = csc_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    flat[:, unknown] = splu(a).solve(rhs).T
    return out

