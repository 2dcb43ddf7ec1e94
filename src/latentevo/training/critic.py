"""Training a realness critic for a fixed generator: the DCGAN discriminator's architecture
(unconditional) fitted afterwards to tell shapes-world renders from the committed DCGAN's samples
(its own discriminator was not kept). The search reads D(x) = sigmoid(logit) as how real an
image looks (CLIP-GLaSS's realness objective)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.dcgan import DCGANNetD, dcgan_shapes, init_weights
from ..models.weights import WORLD_DIR
from ..paths import resolve
from .data import ImageSource
from .recipe import AdversarialSteps
from .state import StateDicts

#: the seed of the held-out renders and samples the critic is judged on
HELD_OUT = 77_777


@dataclass
class CriticConfig(AdversarialSteps):
    ndf: int = 32
    # the generator's directory (dcgan.safetensors); null: the committed shapes-world models
    generator_dir: str | None = None


class CriticTrainer(StateDicts):
    """Binary cross-entropy on batches of half renders, half generator samples from its prior
    (one batch, so batch norm's statistics are the mixture the critic will see)."""

    STATE_DICTS = ("net", "opt")

    def __init__(self, cfg: CriticConfig, source: ImageSource, g: torch.Generator):
        self.cfg, self.source, self.g = cfg, source, g
        self.generator = dcgan_shapes(weights_dir=resolve(cfg.generator_dir) if cfg.generator_dir else WORLD_DIR)
        self.net = DCGANNetD(cfg.ndf)
        self.net.apply(init_weights)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))

    def _fakes(self, n: int, g: torch.Generator) -> torch.Tensor:
        return self.generator(self.generator.sample_latents(n, g)) * 2 - 1

    def step(self) -> dict[str, float]:
        half = self.cfg.batch_size // 2
        images = torch.cat([self.source.batch(half, self.g), self._fakes(half, self.g)])
        labels = torch.cat([torch.ones(half), torch.zeros(half)])
        loss = F.binary_cross_entropy_with_logits(self.net(images), labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def evaluate(self, n: int) -> dict[str, float]:
        """On n held-out renders and n samples never trained on: accuracy at D = 0.5, the AUC (the
        chance that a render is judged more real than a sample) and the mean realness of each."""
        g = torch.Generator().manual_seed(HELD_OUT)
        real, fake = self.source.batch(n, g), self._fakes(n, g)
        net = self.net.eval()
        d_real, d_fake = torch.sigmoid(net(real)), torch.sigmoid(net(fake))
        net.train()
        return {"accuracy": ((d_real > 0.5).float().mean().item() + (d_fake <= 0.5).float().mean().item()) / 2,
                "auc": (d_real[:, None] > d_fake[None, :]).float().mean().item(),
                "realness_real": d_real.mean().item(), "realness_fake": d_fake.mean().item(),
                "realness_fake_std": d_fake.std().item()}

    def network(self) -> torch.nn.Module:
        return self.net.eval().requires_grad_(False)

    def architecture(self) -> dict:
        return {"ndf": self.cfg.ndf}

