"""StyleGAN2 config-f (Karras et al. 2020): the generator, searchable in Z or W, and the
discriminator of the same checkpoint as a realness model (CLIP-GLaSS's second objective).

No maintained package implements the official architecture and loads its published weights
without compiling CUDA kernels, so the network is defined here in plain PyTorch. Its module and
parameter names are those of the widely used converted checkpoints (rosinality's
stylegan2-pytorch: a file `stylegan2-<dataset>-config-f.pt` holding `g_ema`, the generator's
state dict, and `latent_avg`, the mean W), so such a file loads strictly, key for key.

Config-f: 512-d Z and W, an 8-layer mapping MLP (learning-rate multiplier 0.01), a learned 4x4
constant, two modulated 3x3 convolutions per resolution with weight demodulation, per-layer
noise, skip-connected RGB outputs, and 512 channels up to 32x32, then 512, 256, 128, 64, 32 at
64, 128, 256, 512, 1024 px.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, WeightsError
from ..identity import reads_weights
from .base import Generator
from .precision import autocast, check_precision, memory_format
from .pretrained import load_checkpoint, load_into, locate, weights_dir
from .realness import Realness

# The published models and their output sizes (LSUN car: 512x384 content inside a 512x512 frame).
DATASETS = {"ffhq": 1024, "car": 512, "church": 256, "cat": 256}
STYLE_DIM = 512
MAPPING_LAYERS = 8
MAPPING_LR_MUL = 0.01
BLUR_KERNEL = (1, 3, 3, 1)
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2)
# Mapped samples that estimate W's mean (when a checkpoint has none) and per-dimension spread.
W_SAMPLES = 4096
W_SAMPLES_SEED = 0
HOW_TO_GET = (
    "convert NVIDIA's stylegan2-{dataset}-config-f.pkl with convert_weight.py of rosinality/stylegan2-pytorch "
    "(or take that project's converted stylegan2-{dataset}-config-f.pt)"
)


def channels(resolution: int, multiplier: int = 2) -> int:
    """Feature maps at a resolution in config-f (channel multiplier 2)."""
    return min(512, 16 * multiplier * 1024 // resolution)


# --- building blocks (names match the converted checkpoints) ----------------------------------


def blur_kernel(factor: int = 1) -> torch.Tensor:
    """The separable [1, 3, 3, 1] low-pass filter, normalised, times factor² after upsampling."""
    k = torch.tensor(BLUR_KERNEL, dtype=torch.float32)
    k = torch.outer(k, k)
    return k / k.sum() * factor**2


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, then filter each channel with `kernel` (FIR)."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1)).reshape(b, c, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = kernel.flip(0, 1).to(x.dtype).expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=c)


def lrelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Bias, leaky ReLU and the gain that keeps activations' scale (StyleGAN's fused_lrelu)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), LRELU_SLOPE) * LRELU_GAIN


class Blur(nn.Module):
    def __init__(self, pad: tuple[int, int], factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", blur_kernel(factor))
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x upsampling of the RGB skip path: zero insertion, then the blur filter."""

    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", blur_kernel(2))
        p = len(BLUR_KERNEL) - 2
        self.pad = ((p + 1) // 2 + 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=2, pad=self.pad)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored N(0, 1), scaled at run time."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return lrelu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class ModulatedConv2d(nn.Module):
    """Convolution whose input channels are scaled by a style, then demodulated to unit variance.

    Computed as a shared-weight convolution of the modulated input (rather than a grouped
    convolution with one weight per sample): the same result, and it batches on any device."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            p = (len(BLUR_KERNEL) - 2) - (kernel_size - 1)
            self.blur = Blur(((p + 1) // 2 + 1, p // 2 + 1), factor=2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.modulation(w)  # (B, in)
        weight = self.weight[0] * self.scale  # (out, in, k, k)
        x = x * style[:, :, None, None].to(x.dtype)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2))
        else:
            out = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            # 1 / the norm each output channel's modulated weight would have
            demod = torch.rsqrt(style.square() @ weight.square().sum((2, 3)).t() + 1e-8)
            out = out * demod[:, :, None, None].to(out.dtype)
        return out


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lrelu(x, self.bias)


class StyledConv(nn.Module):
    def __init__(self, in_channel: int, out_channel: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        return out if skip is None else out + self.upsample(skip)


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyleGAN2Network(nn.Module):
    """Mapping network (`style`) and synthesis network of config-f at `resolution`: W -> image
    in about [-1, 1]. The noise inputs are the fixed `noises.noise_<i>` buffers, so one latent
    always gives one image."""

    def __init__(self, resolution: int, style_dim: int = STYLE_DIM, n_mlp: int = MAPPING_LAYERS):
        super().__init__()
        log_size = int(math.log2(resolution))
        if resolution < 8 or 2**log_size != resolution:
            raise ConfigError(f"StyleGAN2 resolution must be a power of two >= 8, got {resolution}")
        self.resolution, self.style_dim = resolution, style_dim
        self.style = nn.Sequential(
            PixelNorm(),
            *(EqualLinear(style_dim, style_dim, lr_mul=MAPPING_LR_MUL, activation=True) for _ in range(n_mlp)),
        )
        self.input = ConstantInput(channels(4))
        self.conv1 = StyledConv(channels(4), channels(4), style_dim)
        self.to_rgb1 = ToRGB(channels(4), style_dim, upsample=False)
        self.convs, self.to_rgbs, self.noises = nn.ModuleList(), nn.ModuleList(), nn.Module()
        self.num_layers = (log_size - 2) * 2 + 1
        for i in range(self.num_layers):
            side = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, side, side))
        in_channel = channels(4)
        for level in range(3, log_size + 1):
            out_channel = channels(2**level)
            self.convs.append(StyledConv(in_channel, out_channel, style_dim, upsample=True))
            self.convs.append(StyledConv(out_channel, out_channel, style_dim))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel

    def synthesis(self, w: torch.Tensor, layout: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
        """(B, style_dim) W (the same at every layer) -> (B, 3, resolution, resolution)."""
        noise = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        x = self.input(len(w)).contiguous(memory_format=layout)
        x = self.conv1(x, w, noise[0])
        skip = self.to_rgb1(x, w)
        for k, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * k](x, w, noise[2 * k + 1])
            x = self.convs[2 * k + 1](x, w, noise[2 * k + 2])
            skip = to_rgb(x, w, skip)
        return skip


def weights_file(dataset: str) -> str:
    return f"stylegan2-{dataset}-config-f.pt"


def weights_path(dataset: str, weights: str | None) -> Path:
    return locate(model_label(dataset), weights_file(dataset), weights, HOW_TO_GET.format(dataset=dataset))


def model_label(dataset: str) -> str:
    return f"StyleGAN2-{dataset} (config-f)"


def load_network(network: StyleGAN2Network, dataset: str, path: Path) -> torch.Tensor | None:
    """Loads a converted checkpoint into the network; returns its mean W (`latent_avg`), if any."""
    model = model_label(dataset)
    checkpoint = load_checkpoint(path, model)
    if not isinstance(checkpoint, dict) or "g_ema" not in checkpoint:
        raise WeightsError(f"the {model} weights {path} hold no 'g_ema' generator state dict; expected a converted "
                           "checkpoint as written by rosinality/stylegan2-pytorch's convert_weight.py")
    load_into(network, checkpoint["g_ema"], model, path)
    latent_avg = checkpoint.get("latent_avg")
    return None if latent_avg is None else torch.as_tensor(latent_avg, dtype=torch.float32).reshape(-1)


def weight_files(dataset: str, random_init: bool, weights: str | None, **_) -> list[Path]:
    return [] if random_init else [weights_dir(weights) / weights_file(dataset)]


@reads_weights(weight_files)
class StyleGAN2Generator(Generator):
    """StyleGAN2 config-f as a search space.

    space=z: the latent is z (512), mapped to W by the mapping network, as CLIP-GLaSS searched.
    space=w: the latent is W standardised per dimension (w = mean + latent * std, both estimated
    from mapped samples), so that one search box suits every dimension.
    Either way W is truncated towards the mean W by `truncation_psi` (1: no truncation); the
    mean W is the checkpoint's `latent_avg`, else the mean of mapped samples.
    `resolution` below the published one builds the same architecture smaller (for tests);
    real weights need the published resolution."""

    differentiable = True

    def __init__(self, dataset: str = "ffhq", space: str = "z", truncation_psi: float = 1.0,
                 latent_bound: float | None = None, resolution: int | None = None, random_init: bool = False,
                 weights: str | None = None, precision: str = "fp32", channels_last: bool = False):
        super().__init__()
        if dataset not in DATASETS:
            raise ConfigError(f"unknown StyleGAN2 dataset {dataset!r}; known: {', '.join(DATASETS)}")
        if space not in ("z", "w"):
            raise ConfigError(f"StyleGAN2 space must be z or w, got {space!r}")
        if not 0 < truncation_psi <= 1:
            raise ConfigError(f"truncation_psi must be in (0, 1], got {truncation_psi}")
        published = DATASETS[dataset]
        resolution = resolution or published
        if not random_init and resolution != published:
            raise ConfigError(f"StyleGAN2-{dataset} weights are {published} px; "
                              f"resolution={resolution} needs random_init=true")
        self.dataset, self.space, self.truncation_psi = dataset, space, truncation_psi
        self.precision, self.layout = check_precision(precision), memory_format(channels_last)
        path = None if random_init else weights_path(dataset, weights)  # a missing file stops before the build
        self.network = StyleGAN2Network(resolution).requires_grad_(False)
        latent_avg = None if path is None else load_network(self.network, dataset, path)
        self.network.eval()
        self.latent_dim, self.resolution = STYLE_DIM, resolution
        # CLIP-GLaSS searched z in [-10, 10]: the mapping normalises z, so only its direction counts
        self.latent_bound = latent_bound if latent_bound is not None else (10.0 if space == "z" else 3.0)
        w_mean, w_std = self.w_statistics()
        self.register_buffer("w_avg", w_mean if latent_avg is None else latent_avg)
        self.register_buffer("w_std", w_std)

    @torch.no_grad()
    def w_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and per-dimension std of W over W_SAMPLES mapped z, from a fixed seed."""
        z = torch.randn(W_SAMPLES, STYLE_DIM, generator=torch.Generator().manual_seed(W_SAMPLES_SEED))
        w = self.network.style(z)
        return w.mean(0), w.std(0)

    def to_w(self, latent: torch.Tensor) -> torch.Tensor:
        w = self.network.style(latent) if self.space == "z" else self.w_avg + latent * self.w_std
        return self.w_avg + self.truncation_psi * (w - self.w_avg)

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Z: N(0, I) truncated to the box. W: mapped prior draws, standardised, clamped to the box."""
        z = super().sample_latents(n, generator)
        if self.space == "z":
            return z
        with torch.no_grad():
            w = self.network.style(torch.randn(n, STYLE_DIM, generator=generator).to(self.device))
        return ((w - self.w_avg) / self.w_std).clamp(-self.latent_bound, self.latent_bound).cpu()

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.precision):
            image = self.network.synthesis(self.to_w(z), self.layout)
        return ((image.float() + 1) / 2).clamp(0, 1).contiguous()


# --- the discriminator (rosinality's `Discriminator`, key for key: a checkpoint's `d`) -------


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate: weights stored N(0, 1), scaled at run time."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class ConvLayer(nn.Sequential):
    """[blur, stride-2] equalised convolution [, bias + leaky ReLU]."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, downsample: bool = False,
                 bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(BLUR_KERNEL) - 2) + (kernel_size - 1)
            layers.append(Blur(((p + 1) // 2, p // 2)))
        stride, padding = (2, 0) if downsample else (1, kernel_size // 2)
        layers.append(EqualConv2d(in_channel, out_channel, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channel))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True)
        self.skip = ConvLayer(in_channel, out_channel, 1, downsample=True, activate=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class StyleGAN2Discriminator(nn.Module):
    """(B, 3, resolution, resolution) in [-1, 1] -> (B,) real/fake logit: residual downsampling
    blocks to 4x4, the minibatch-stddev feature, a 3x3 convolution and two linear layers.

    The minibatch-stddev feature is computed over groups of `stddev_group` images; 1 (the
    default here) judges each image alone (the feature is then its floor, sqrt(1e-8)), so that an
    image's realness does not depend on the images beside it in a batch or a pack."""

    def __init__(self, resolution: int, stddev_group: int = 1):
        super().__init__()
        log_size = int(math.log2(resolution))
        if resolution < 8 or 2**log_size != resolution:
            raise ConfigError(f"StyleGAN2 resolution must be a power of two >= 8, got {resolution}")
        convs: list[nn.Module] = [ConvLayer(3, channels(resolution), 1)]
        in_channel = channels(resolution)
        for level in range(log_size, 2, -1):
            convs.append(ResBlock(in_channel, channels(2 ** (level - 1))))
            in_channel = channels(2 ** (level - 1))
        self.convs = nn.Sequential(*convs)
        self.stddev_group = stddev_group
        self.final_conv = ConvLayer(in_channel + 1, channels(4), 3)
        self.final_linear = nn.Sequential(EqualLinear(channels(4) * 4 * 4, channels(4), activation=True),
                                          EqualLinear(channels(4), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs(x)
        b, c, h, w = out.shape
        group = min(b, self.stddev_group)
        grouped = out.view(group, -1, 1, c, h, w)
        stddev = torch.sqrt(grouped.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        out = torch.cat([out, stddev.repeat(group, 1, h, w)], 1)
        return self.final_linear(self.final_conv(out).view(b, -1)).flatten()


@reads_weights(weight_files)
def stylegan2_realness(dataset: str = "ffhq", resolution: int | None = None, random_init: bool = False,
                       weights: str | None = None) -> Realness:
    """The discriminator `d` of the converted checkpoint the generator comes from, as sigmoid(D(x));
    random_init: the same architecture randomly initialised (`resolution` may then be smaller)."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown StyleGAN2 dataset {dataset!r}; known: {', '.join(DATASETS)}")
    published = DATASETS[dataset]
    resolution = resolution or published
    if not random_init and resolution != published:
        raise ConfigError(f"StyleGAN2-{dataset} weights are {published} px; resolution={resolution} needs "
                          "random_init=true")
    path = None if random_init else weights_path(dataset, weights)
    net = StyleGAN2Discriminator(resolution)
    if path is not None:
        model = f"{model_label(dataset)} discriminator"
        checkpoint = load_checkpoint(path, model)
        if not isinstance(checkpoint, dict) or "d" not in checkpoint:
            raise WeightsError(f"the {model_label(dataset)} weights {path} hold no 'd' discriminator state dict; "
                               "convert them with the discriminator kept (convert_weight.py --disc)")
        load_into(net, checkpoint["d"], model, path)
    return Realness(net, resolution)
