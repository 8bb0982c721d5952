"""BiT: pre-activation ResNet v2 with GroupNorm and weight-standardised convs; no batch statistics.

Follows Kolesnikov et al. 2020 ("Big Transfer (BiT)"): ResNet v2 blocks (He et al. 2016, "Identity
Mappings in Deep Residual Networks") whose BatchNorms are GroupNorm(32) and whose convs standardise
their weights (Qiao et al. 2019); the width factor of "R50x3" is width=192 (64 x 3). It shares the
knobs, depth rules and module of scaling/models/resnet.py (built with `preact=True`). Departures:
GroupNorm uses gcd(32, channels) groups so narrow networks build; the stem's max pool pads with
-inf (BiT pads with zeros); the head is a Linear layer with the default init (BiT: zero-init 1x1 conv).
"""

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
from flax import nnx

from scaling.models import resnet
from scaling.models.counting import Counts

_KNOBS = [knob for knob in resnet.DEFAULTS if knob != "bn_stats"]  # GroupNorm: no batch statistics
DEFAULTS: dict[str, Any] = {**{knob: resnet.DEFAULTS[knob] for knob in _KNOBS}, "depth": 50, "block": "bottleneck"}
KINDS: dict[str, Any] = {knob: resnet.KINDS[knob] for knob in _KNOBS}
VARIANTS: dict[str, dict[str, Any]] = {
    f"bit-resnet{depth}" + (f"x{factor}" if factor > 1 else ""): {
        "width": 64 * factor, "depth": depth, "block": "bottleneck", "stem": "imagenet",
    }
    for depth in (50, 101, 152) for factor in (1, 2, 3, 4)
}
PARTITION_RULES = resnet.PARTITION_RULES
check = resnet.check


def describe(cfg: Mapping[str, Any]) -> str:
    """One-line summary, e.g. 'bit-resnet-50 bottleneck width 64 stages (3,4,6,3) stem imagenet'."""
    return resnet.describe(cfg, prefix="bit-resnet")


def build(cfg: Mapping[str, Any], *, image_shape: tuple[int, int, int], num_classes: int,
          rngs: nnx.Rngs, dtype: jnp.dtype | None = None) -> resnet.ResNet:
    """Build a pre-activation ResNet from a validated, default-filled config."""
    return resnet.build(cfg, image_shape=image_shape, num_classes=num_classes, rngs=rngs, dtype=dtype, preact=True)


def count(cfg: Mapping[str, Any], image_shape: tuple[int, int, int], num_classes: int) -> Counts:
    """Analytic parameters and forward multiply-adds."""
    return resnet.count(cfg, image_shape, num_classes, preact=True)
