"""`make cifar10-classifier`: trains the CIFAR-10 CNN (models.classifier.Cifar10Net) that the
evaluation `evaluation=cifar10` asks, and saves it as cifar10-cnn.safetensors in the weights
directory. CIFAR-10 is read from --data (torchvision's cifar-10-batches-py layout), downloaded
there first when the network allows.

    python -m latentevo.evaluation.train_cifar10 [--epochs 30] [--data DIR] [--weights DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from ..cli import ArgumentParser, exit_on_error
from ..devices import resolve_device
from ..errors import WeightsError
from ..models.classifier import CIFAR10_FILE, Cifar10Net
from ..models.pretrained import can_download, weights_dir
from ..models.weights import save_weights

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
DEFAULT_DATA = Path("~/.cache/latentevo/data")


def cifar10(root: Path, train: bool) -> Dataset:
    """CIFAR-10 from `root`, downloaded there when missing and the host can be reached; otherwise
    a one-line error saying where to put it."""
    augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if train else []
    transform = transforms.Compose([*augment, transforms.ToTensor()])
    present = (root / "cifar-10-batches-py").is_dir()
    if not present and not can_download(CIFAR10_URL):
        raise WeightsError(f"CIFAR-10 is not in {root / 'cifar-10-batches-py'} and www.cs.toronto.edu cannot be "
                           f"reached; unpack {CIFAR10_URL} into {root} (or pass --data DIR)")
    try:
        return datasets.CIFAR10(str(root), train=train, transform=transform, download=not present)
    except (RuntimeError, OSError) as err:
        raise WeightsError(
            f"cannot read CIFAR-10 from {root}: {(str(err).splitlines() or [type(err).__name__])[0]}"
        ) from err


def train_epoch(model: Cifar10Net, loader: DataLoader, optimiser: torch.optim.Optimizer,
                schedule: torch.optim.lr_scheduler.LRScheduler, device: torch.device) -> float:
    """One epoch of cross-entropy training; the mean loss."""
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        loss = nn.functional.cross_entropy(model(images), labels, label_smoothing=0.1)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        total, count = total + loss.item() * len(labels), count + len(labels)
    return total / count


@torch.no_grad()
def accuracy(model: Cifar10Net, loader: DataLoader, device: torch.device) -> float:
    model.eval()
    right = sum(int((model(x.to(device)).argmax(1) == y.to(device)).sum()) for x, y in loader)
    return right / len(loader.dataset)


def train(train_set: Dataset, test_set: Dataset, epochs: int, batch_size: int, device: torch.device,
          seed: int = 0) -> tuple[Cifar10Net, float]:
    """A Cifar10Net trained with SGD + one-cycle schedule; it and its test accuracy."""
    torch.manual_seed(seed)
    model = Cifar10Net().to(device)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    test = DataLoader(test_set, batch_size=512)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=0.1, total_steps=epochs * len(loader))
    for epoch in range(epochs):
        loss = train_epoch(model, loader, optimiser, schedule, device)
        print(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f}", flush=True)
    return model.eval().cpu(), accuracy(model, test, device)


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m latentevo.evaluation.train_cifar10", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="where CIFAR-10 is (or is downloaded to)")
    parser.add_argument("--weights", type=Path,
                        help="weights directory (default: $LATENTEVO_WEIGHTS, else ~/.cache/latentevo/weights)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... or auto (cuda when there is one)")
    args = parser.parse_args(argv)
    root = args.data.expanduser()
    train_set, test_set = cifar10(root, train=True), cifar10(root, train=False)
    model, test_accuracy = train(train_set, test_set, args.epochs, args.batch_size, resolve_device(args.device))
    path = weights_dir(args.weights) / CIFAR10_FILE
    save_weights(path, model.state_dict())
    print(f"test accuracy {test_accuracy:.2%}; weights: {path}")


if __name__ == "__main__":
    exit_on_error(main)
