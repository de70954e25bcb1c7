"""A small attribute classifier trained on real images, used to judge translations.

It plays the role of the paper's classifier-based evaluation: a translation "carries the
target attribute" when this classifier, which never saw a generated image, says so.
"""

from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from stargan.atomic import atomic_path
from stargan.data.cache import cache_key, default_cache_dir
from stargan.data.dataset import ImageLabelDataset, random_flip, to_model_range
from stargan.losses import classification_loss

CLASSIFIER_VERSION = 1


class AttributeClassifier(nn.Module):
    """Four stride-2 conv blocks with batch norm, global average pool, linear logits."""

    def __init__(self, c_dim: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch_in = 3
        for i in range(4):
            ch = width * 2**i
            layers += [
                nn.Conv2d(ch_in, ch, 3, 2, 1, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(inplace=True),
                nn.Conv2d(ch, ch, 3, 1, 1, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(inplace=True),
            ]
            ch_in = ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch_in, c_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, H, W] in [-1, 1] -> logits [N, c_dim]
        return self.head(self.features(x).mean((2, 3)))


def predict(
    model: AttributeClassifier, x: torch.Tensor, kind: str, batch_size: int = 256
) -> torch.Tensor:
    """0/1 predictions [N, c] (one-hot for categorical labels)."""
    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, x.size(0), batch_size):
            logits = model(x[start : start + batch_size])
            if kind == "categorical":
                outs.append(nn.functional.one_hot(logits.argmax(1), logits.size(1)).float())
            else:
                outs.append((logits > 0).float())
    return torch.cat(outs)


def train_classifier(
    data: ImageLabelDataset,
    steps: int = 600,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> AttributeClassifier:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AttributeClassifier(data.spec.dim)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in tqdm(range(steps), desc="train attribute classifier", disable=not progress):
        idx = torch.randint(len(data), (batch_size,), generator=gen)
        x, c = data.batch(idx)
        x = to_model_range(random_flip(x, gen))
        loss = classification_loss(model(x), c, data.spec.kind)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def cached_classifier(
    data: ImageLabelDataset, key_parts: tuple, steps: int = 600, progress: bool = True
) -> AttributeClassifier:
    """Train once per (data, settings); later calls load the saved weights."""
    key = cache_key("classifier", CLASSIFIER_VERSION, steps, *key_parts)
    path = default_cache_dir() / "classifiers" / f"{data.name}-{key}.safetensors"
    model = AttributeClassifier(data.spec.dim)
    if path.exists():
        try:
            model.load_state_dict(load_file(str(path)))
            return model.eval()
        except (OSError, RuntimeError):
            path.unlink(missing_ok=True)
    model = train_classifier(data, steps, progress=progress)
    try:
        with atomic_path(path) as tmp:
            save_file(model.state_dict(), str(tmp))
    except OSError:
        pass
    return model
