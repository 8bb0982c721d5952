"""Shape rules: the config of a family whose parameters or forward FLOPs hit a target.

Every knob not solved for comes from the family's reference variant:
  resnet, bit   width (base channels, 64 = x1) at depth 50 (bottleneck blocks, ImageNet stem);
  alexnet       width (first conv's channels; every layer scales with it);
  vgg           width at depth 16 (configuration D);
  convnext      width at ConvNeXt-T's blocks (3,3,9,3);
  vit           depth from a fixed aspect ratio width = 64 * depth (Kaplan et al. 2020 style; heads
                of 64 channels, MLP 4x, patch 16, class token), then the width at that depth in
                multiples of 8, with heads the divisor of the width nearest width / 64.
The analytic counts (scaling.models.counting) grow with each solved knob, so a doubling search and
bisection find the integer whose count is nearest the target in ratio; the result is typically
within a few percent of it (discreteness of small widths and of ViT depths bounds how close).
"""

from collections.abc import Callable
from typing import Any

import ml_collections

from scaling.errors import ConfigError
from scaling.models.registry import MODEL_NAMES, model_counts, variant_config

_REFERENCE = {
    "resnet": "resnet50", "vit": "vit-b/16", "bit": "bit-resnet50", "alexnet": "alexnet", "vgg": "vgg16",
    "convnext": "convnext-t",
}
_LIMIT = 1 << 16  # largest width or depth searched
_HEAD_CHANNELS = 64
_VIT_WIDTH_STEP = 8


def _nearest(size: Callable[[int], float], target: float) -> int:
    """The integer n >= 1 whose size(n) (increasing in n) is nearest `target` in ratio."""
    high = 1
    while size(high) < target:
        if high >= _LIMIT:
            raise ConfigError(f"target {target:.3g} is beyond the shape rule's largest model ({size(high):.3g})")
        high *= 2
    low = high // 2  # size(low) < target <= size(high), or low = 0
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if size(middle) < target else (low, middle)
    if low == 0:
        return high
    return low if target / size(low) < size(high) / target else high


def _heads(width: int) -> int:
    """The divisor of `width` nearest width / 64 (heads of about 64 channels)."""
    return min((d for d in range(1, width + 1) if width % d == 0), key=lambda d: abs(d - width / _HEAD_CHANNELS))


def shape_for(family: str, params: float | None = None, flops: float | None = None,
              image_shape: tuple[int, int, int] = (224, 224, 3), num_classes: int = 1000) -> ml_collections.ConfigDict:
    """Model config of `family` with about `params` parameters or `flops` forward FLOPs per image (2 x MACs)."""
    if family not in _REFERENCE:
        raise ConfigError(f"unknown model family {family!r}; choose one of: {', '.join(MODEL_NAMES)}")
    targets = [value for value in (params, flops) if value is not None]
    if len(targets) != 1 or not targets[0] > 0:
        raise ConfigError(f"give exactly one positive target, params or flops; got params={params}, flops={flops}")
    target = targets[0]
    base = variant_config(_REFERENCE[family])

    def shaped(**knobs: Any) -> ml_collections.ConfigDict:
        cfg = ml_collections.ConfigDict(base.to_dict())
        cfg.update(knobs)
        return cfg

    def size(cfg: ml_collections.ConfigDict) -> float:
        counts = model_counts(cfg, image_shape=image_shape, num_classes=num_classes)
        return counts.params if params is not None else 2.0 * counts.macs

    if family != "vit":
        return shaped(width=_nearest(lambda width: size(shaped(width=width)), target))

    def vit(width: int, depth: int) -> ml_collections.ConfigDict:
        return shaped(width=width, depth=depth, num_heads=_heads(width))

    depth = _nearest(lambda d: size(vit(_HEAD_CHANNELS * d, d)), target)
    steps = _nearest(lambda k: size(vit(_VIT_WIDTH_STEP * k, depth)), target)
    return vit(_VIT_WIDTH_STEP * steps, depth)
