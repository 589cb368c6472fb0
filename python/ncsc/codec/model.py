"""The NCSC model: Cheng et al. 2020 without attention, with a K-component Gaussian mixture.

Transforms follow CompressAI's ``cheng2020-anchor`` (residual blocks, sub-pixel
up-sampling, hyperprior, 5x5 masked context model). The entropy-parameter head
outputs, per latent element, K (weight, mean, scale) triples: 3*K*M channels.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._lean import import_compressai

# CompressAI calls torch.jit.script at import, which torch 2.14 answers with a FutureWarning
# on every command; that one warning says nothing to our users, so it is silenced here only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    import_compressai()  # without PyTorch Geometric: half of CompressAI's import time (_lean)
    from compressai.entropy_models import EntropyBottleneck
    from compressai.layers import (
        MaskedConv2d,
        ResidualBlock,
        ResidualBlockUpsample,
        ResidualBlockWithStride,
        conv3x3,
        subpel_conv3x3,
    )
    from compressai.models import CompressionModel
    from compressai.ops import LowerBound, quantize_ste

TRAIN_QUANT = ("noise", "mixed", "hard")
SCALE_MIN = 0.11
SCALE_MAX = 64.0
LIKELIHOOD_MIN = 1e-9


def _gaussian_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * (2**-0.5))


def mixture_likelihood(y_hat: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
                       scales: torch.Tensor) -> torch.Tensor:
    """Probability of each integer-bin of y_hat under the mixture; tensors (B, K, M, H, W), fp32."""
    y = y_hat.unsqueeze(1)
    upper = _gaussian_cdf((y + 0.5 - means) / scales)
    lower = _gaussian_cdf((y - 0.5 - means) / scales)
    return (weights * (upper - lower)).sum(1)


class NcscModel(CompressionModel):
    """Learned image codec; ``forward`` for training, ``compress``/``decompress`` live in :mod:`.coder`."""

    def __init__(self, N: int = 128, M: int | None = None, K: int = 3):
        super().__init__()
        M = N if M is None else M
        self.N, self.M, self.K = N, M, K
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.g_a = nn.Sequential(
            ResidualBlockWithStride(3, N, stride=2),
            ResidualBlock(N, N),
            ResidualBlockWithStride(N, N, stride=2),
            ResidualBlock(N, N),
            ResidualBlockWithStride(N, N, stride=2),
            ResidualBlock(N, N),
            conv3x3(N, M, stride=2),
        )
        self.g_s = nn.Sequential(
            ResidualBlock(M, N),
            ResidualBlockUpsample(N, N, 2),
            ResidualBlock(N, N),
            ResidualBlockUpsample(N, N, 2),
            ResidualBlock(N, N),
            ResidualBlockUpsample(N, N, 2),
            ResidualBlock(N, N),
            subpel_conv3x3(N, 3, 2),
        )
        self.h_a = nn.Sequential(
            conv3x3(M, N),
            nn.LeakyReLU(inplace=True),
            conv3x3(N, N),
            nn.LeakyReLU(inplace=True),
            conv3x3(N, N, stride=2),
            nn.LeakyReLU(inplace=True),
            conv3x3(N, N),
            nn.LeakyReLU(inplace=True),
            conv3x3(N, N, stride=2),
        )
        self.h_s = nn.Sequential(
            conv3x3(N, M),
            nn.LeakyReLU(inplace=True),
            subpel_conv3x3(M, M, 2),
            nn.LeakyReLU(inplace=True),
            conv3x3(M, M * 3 // 2),
            nn.LeakyReLU(inplace=True),
            subpel_conv3x3(M * 3 // 2, M * 3 // 2, 2),
            nn.LeakyReLU(inplace=True),
            conv3x3(M * 3 // 2, M * 2),
        )
        self.context_prediction = MaskedConv2d(M, 2 * M, kernel_size=5, padding=2, stride=1)
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(M * 4, M * 4, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(M * 4, M * 4, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(M * 4, 3 * K * M, 1),
        )
        self.scale_lower_bound = LowerBound(SCALE_MIN)
        self.train_quant = "noise"
        # Training only: the share of batches whose context model is restricted to random slices
        # (or switched off), so the hyperprior must carry what crosses a slice edge.
        self.slice_train = 0.0

    @property
    def downsampling_factor(self) -> int:
        return 2 ** (4 + 2)

    def freeze_analysis(self, frozen: bool = True) -> None:
        """Freeze g_a and h_a (the ``hard`` stage): the latents stay what they are, so rounding
        them needs no gradient, and the rest of the model fits them exactly."""
        for p in (*self.g_a.parameters(), *self.h_a.parameters()):
            p.requires_grad_(not frozen)

    def mixture_params(self, entropy_out: torch.Tensor):
        """Split the head output into (weights, means, scales), each (B, K, M, H, W) in fp32."""
        b, _, h, w = entropy_out.shape
        p = entropy_out.float().reshape(b, 3, self.K, self.M, h, w)
        weights = F.softmax(p[:, 0], dim=1)
        means = p[:, 1]
        scales = self.scale_lower_bound(p[:, 2]).clamp(max=SCALE_MAX)
        return weights, means, scales

    def sliced_context(self, y_hat: torch.Tensor, tile_h: int, tile_w: int) -> torch.Tensor:
        """The context model's output when it sees only its own ``tile_h`` x ``tile_w`` tile of
        latents (zeros beyond the tile's edges), as an independently decoded slice sees it."""
        b, c, h, w = y_hat.shape
        th, tw = min(tile_h, h), min(tile_w, w)
        ph, pw = -h % th, -w % tw
        y = F.pad(y_hat, (0, pw, 0, ph))
        nh, nw = (h + ph) // th, (w + pw) // tw
        tiles = y.reshape(b, c, nh, th, nw, tw).permute(0, 2, 4, 1, 3, 5).reshape(b * nh * nw, c, th, tw)
        ctx = self.context_prediction(tiles)
        c2 = ctx.shape[1]
        ctx = ctx.reshape(b, nh, nw, c2, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(b, c2, nh * th, nw * tw)
        return ctx[:, :, :h, :w]

    def _slice_restricted(self, ctx: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        """A random slice layout for this batch: full context, no context, row bands or tiles."""
        u = torch.rand(()).item()
        if u >= self.slice_train:
            return ctx
        if u < 0.15 * self.slice_train:
            return torch.zeros_like(ctx)
        h, w = y_hat.shape[-2:]
        sizes = [1, 2, 4, 8, 16]
        th = sizes[int(torch.randint(len(sizes), ()))]
        tw = w if torch.rand(()).item() < 0.4 else sizes[1 + int(torch.randint(len(sizes) - 1, ()))]
        return self.sliced_context(y_hat, th, tw)

    def forward(self, x: torch.Tensor) -> dict:
        """Training/evaluation pass. ``train_quant`` sets how training stands in for rounding:
        ``noise`` adds uniform noise everywhere (CompressAI's models); ``mixed`` (Minnen & Singh
        2020) keeps noise for the rate terms only and feeds straight-through rounded latents to the
        context model, hyper-synthesis and synthesis, which is what they see when coding; ``hard``
        (the "hard" stage of Guo et al. 2021) rounds everywhere, as evaluation does, for a final
        stage with the analysis transforms frozen: the entropy model then fits the exact rate of
        the symbols that get coded and the synthesis the latents it will decode."""
        y = self.g_a(x)
        z = self.h_a(y)
        mode = self.train_quant if self.training else "hard"
        # Rate terms stay in fp32 even under bf16 autocast: they are sums of many small logs.
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = z.float()
            z_hat, z_likelihoods = self.entropy_bottleneck(z, training=mode != "hard")
            if mode == "mixed":
                medians = self.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
                z_hat = quantize_ste(z - medians) + medians
            y = y.float()
            if mode == "hard":
                y_tilde = y_hat = torch.round(y)
            elif mode == "mixed":
                y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5)
                y_hat = quantize_ste(y)
            else:
                y_tilde = y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        params = self.h_s(z_hat)
        ctx = self.context_prediction(y_hat)
        if self.training and self.slice_train > 0:
            ctx = self._slice_restricted(ctx, y_hat)
        out = self.entropy_parameters(torch.cat((params, ctx), dim=1))
        with torch.autocast(device_type=x.device.type, enabled=False):
            weights, means, scales = self.mixture_params(out)
            y_likelihoods = mixture_likelihood(y_tilde, weights, means, scales).clamp_min(LIKELIHOOD_MIN)
        x_hat = self.g_s(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}
