"""On-device training augmentation: pure JAX, deterministic given a key, one key per example.

`augment_images` maps a uint8 batch [B, H, W, C] to float32 [B, size, size, C] in 0..255
(normalisation happens later) by inception crop, then horizontal flip, then RandAugment, each
optional; `mixup` mixes a float batch and returns soft labels. Example i uses
`jax.random.split(key, B)[i]`, so results do not depend on how the batch is sharded.

Recipes and where this departs from them:

* Inception crop (Szegedy et al. 2015; TF-slim `distorted_bounding_box_crop`): area fraction
  uniform in [min_area, 1], aspect ratio in [3/4, 4/3] sampled log-uniformly (as torchvision/timm;
  TF samples it uniformly), resized back with antialiased bilinear `jax.image.scale_and_translate`
  (TF: bilinear without antialiasing). The box is sub-pixel rather than rounded to whole pixels.
  Of 10 candidate boxes the first that fits is taken, else the whole image (TF: 100 attempts).
* Flip: horizontal with p = 0.5.
* RandAugment (Cubuk et al. 2020): the paper's 14 ops (`OPS`), N per image, each drawn uniformly
  and always applied (timm applies each with p = 0.5), after crop and flip at the output size (as
  timm). Magnitude M in [0, 10] maps as timm's "increasing" variants, so M = 0 leaves every op but
  autocontrast and equalize (which take no magnitude) the identity: brightness/colour/contrast/
  sharpness factor 1 +- 0.9 M/10 (TF: 0.1 + 1.8 M/10), solarize threshold 256 - 25.6 M, posterize
  keeps 8 - floor(0.4 M) bits (TF: floor(0.4 M)), rotate +-3 M degrees, shear +-0.03 M, translate
  +-0.045 M of the image side (timm's translate_pct 0.45), signs random. Rotate and shear turn
  about the image centre (PIL/TF shear about the top-left corner); geometric ops sample
  bilinearly and fill with 128 (TF's replace value). Images stay float between ops, clipped to
  [0, 255] but not re-quantised to uint8 as PIL would.
* Mixup (Zhang et al. 2018): one lambda ~ Beta(alpha, alpha) per batch, each example mixed with
  the batch reversed (timm's default; batches are already random permutations of the data).

Cost: under vmap, `lax.switch` evaluates every RandAugment op for every image and selects one, so
one op costs about all 14 together (on CPU mostly equalize's histogram, a scatter-add).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

FILL = 128.0  # value geometric ops give pixels from outside the image
CROP_ATTEMPTS = 10  # candidate inception-crop boxes per image


@dataclasses.dataclass(frozen=True)
class Augment:
    """Which training augmentations to apply (config `data.augment`)."""

    inception_crop: bool = False  # random-resized crop, resized back to the output size
    min_area: float = 0.08  # smallest crop area, as a fraction of the image
    flip: bool = False  # horizontal flip with p = 0.5
    randaugment_ops: int = 0  # RandAugment ops per image; 0 = off
    randaugment_magnitude: float = 9.0  # RandAugment M, on its 0..10 scale
    mixup_alpha: float = 0.0  # mixup lambda ~ Beta(alpha, alpha); 0 = off

    @property
    def active(self) -> bool:
        """Whether any augmentation is on."""
        return self.inception_crop or self.flip or self.randaugment_ops > 0 or self.mixup_alpha > 0


def augment_images(key: jax.Array, images: jax.Array, augment: Augment, size: int | None = None) -> jax.Array:
    """uint8 [B,H,W,C] -> float32 [B,size,size,C] (size defaults to H): crop, flip, RandAugment (not mixup)."""
    size = images.shape[1] if size is None else size
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda k, image: _augment_one(k, image, augment, size))(keys, images)


def _augment_one(key: jax.Array, image: jax.Array, augment: Augment, size: int) -> jax.Array:
    crop_key, flip_key, randaugment_key = jax.random.split(key, 3)
    image = image.astype(jnp.float32)
    height, width = image.shape[:2]
    if augment.inception_crop:
        image = _resize_box(image, _sample_crop_box(crop_key, height, width, augment.min_area), size)
    elif (height, width) != (size, size):
        image = _resize_box(image, (0.0, 0.0, height, width), size)
    if augment.flip:
        image = jnp.where(jax.random.bernoulli(flip_key), image[:, ::-1], image)
    if augment.randaugment_ops:
        image = _randaugment(randaugment_key, image, augment.randaugment_ops, augment.randaugment_magnitude)
    return image


# --------------------------------------------------------------------------- inception crop


def _sample_crop_box(
    key: jax.Array, height: int, width: int, min_area: float
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(top, left, box height, box width) of a random crop, in (sub-)pixels."""
    area_key, ratio_key, top_key, left_key = jax.random.split(key, 4)
    area = jax.random.uniform(area_key, (CROP_ATTEMPTS,), minval=min_area, maxval=1.0) * height * width
    ratio = jnp.exp(jax.random.uniform(ratio_key, (CROP_ATTEMPTS,), minval=math.log(3 / 4), maxval=math.log(4 / 3)))
    box_height, box_width = jnp.sqrt(area / ratio), jnp.sqrt(area * ratio)
    fits = (box_height <= height) & (box_width <= width)
    first = jnp.argmax(fits)
    box_height = jnp.where(fits.any(), box_height[first], height)
    box_width = jnp.where(fits.any(), box_width[first], width)
    top = jax.random.uniform(top_key) * (height - box_height)
    left = jax.random.uniform(left_key) * (width - box_width)
    return top, left, box_height, box_width


def _resize_box(image: jax.Array, box: tuple[jax.Array | float, ...], size: int) -> jax.Array:
    """The `box` (top, left, height, width) of `image`, resized to [size, size] (antialiased bilinear)."""
    top, left, box_height, box_width = box
    scale = jnp.stack([size / box_height, size / box_width]).astype(jnp.float32)
    translation = -jnp.stack([top, left]).astype(jnp.float32) * scale
    return jax.image.scale_and_translate(
        image, (size, size, image.shape[2]), (0, 1), scale, translation, method="linear"
    )


# --------------------------------------------------------------------------- RandAugment


def _randaugment(key: jax.Array, image: jax.Array, num_ops: int, magnitude: float) -> jax.Array:
    def step(image: jax.Array, op_key: jax.Array) -> tuple[jax.Array, None]:
        choice_key, sign_key = jax.random.split(op_key)
        op = jax.random.randint(choice_key, (), 0, len(OPS))
        sign = jnp.where(jax.random.bernoulli(sign_key), 1.0, -1.0)
        return apply_op(image, op, magnitude, sign), None

    return jax.lax.scan(step, image, jax.random.split(key, num_ops))[0]


def apply_op(image: jax.Array, op: jax.Array | int, magnitude: float, sign: jax.Array | float) -> jax.Array:
    """RandAugment op `OPS[op]` at magnitude M (0..10) on a float [H,W,C] image in 0..255.

    `sign` (+1 or -1) picks the direction of signed ops (rotate, shear, translate, enhance factors).
    """
    level = magnitude / 10
    num_pixel = len(_PIXEL_OPS)
    pixel_ops = [lambda x, s, fn=fn: fn(x, level, s) for fn in _PIXEL_OPS.values()]
    pixel = jax.lax.switch(jnp.where(op < num_pixel, op, 0), pixel_ops, image, sign)
    shape = image.shape[:2]
    affines = [lambda s, fn=fn: fn(level, s, shape) for fn in _GEOMETRIC_OPS.values()]
    affine = jax.lax.switch(jnp.maximum(op - num_pixel, 0), affines, jnp.asarray(sign, jnp.float32))
    return jnp.where(op < num_pixel, pixel, _warp(image, affine))


def _factor(level: float, sign: jax.Array) -> jax.Array:
    return 1 + 0.9 * level * sign


def _blend(degenerate: jax.Array, image: jax.Array, factor: jax.Array) -> jax.Array:
    """PIL ImageEnhance: interpolate (factor < 1) or extrapolate (factor > 1) from `degenerate`."""
    return jnp.clip(degenerate + factor * (image - degenerate), 0, 255)


def _grayscale(image: jax.Array) -> jax.Array:
    """Luma [H,W,1] (ITU-R 601, as PIL) for RGB; the channel mean otherwise (the image itself for C=1)."""
    if image.shape[-1] == 3:
        return image @ jnp.array([[0.299], [0.587], [0.114]], image.dtype)
    return image.mean(axis=-1, keepdims=True)


def _identity(image: jax.Array, level: float, sign: jax.Array) -> jax.Array:
    return image


def _autocontrast(image: jax.Array, level: float, sign: jax.Array) -> jax.Array:
    """Stretch each channel to the full 0..255 range (constant channels unchanged)."""
    low, high = image.min(axis=(0, 1)), image.max(axis=(0, 1))
    spread = high > low
    scale = jnp.where(spread, 255 / jnp.where(spread, high - low, 1), 1)
    return jnp.clip((image - jnp.where(spread, low, 0)) * scale, 0, 255)


def _equalize(image: jax.Array, level: float, sign: jax.Array) -> jax.Array:
    """PIL ImageOps.equalize per channel, on the image rounded to uint8 levels."""
    channels = image.shape[-1]
    levels = jnp.clip(jnp.round(image), 0, 255).astype(jnp.int32)
    bins = levels + 256 * jnp.arange(channels)  # all channels' histograms in one bincount
    histogram = jnp.bincount(bins.ravel(), length=256 * channels).reshape(channels, 256)
    top_count = jnp.take_along_axis(histogram, levels.max(axis=(0, 1))[:, None], axis=1)[:, 0]
    step = (levels[..., 0].size - top_count) // 255
    lut = (jnp.cumsum(histogram, axis=1) - histogram + step[:, None] // 2) // jnp.maximum(step, 1)[:, None]
    return jnp.where(step > 0, jnp.clip(lut, 0, 255).ravel()[bins].astype(image.dtype), image)


def _brightness(image: jax.Array, level: float, sign: jax.Array) -> jax.Array:
    return _blend(jnp.zeros_like(image), image, _factor(level, sign))


def _color(image: jax.Array, level: float, sign: jax.Array) -> jax.Array:
    return _blend(jnp.broadcast_to(_grayscale(image), image.shape), image, _factor(level, sign))


def _contrast(image: jax.Array, level: float, sign: jax.Array) -> jax.Array:
    return _blend(jnp.full_like(image, _grayscale(image).mean()), image, _factor(level, sign))


def _sharpness(image: jax.Array, level: float, sign: jax.Array) -> jax.Array:
    """PIL ImageEnhance.Sharpness: blend with a 3x3 smoothing (weights 1, centre 5) of the interior."""
    rows = image[:-2] + image[1:-1] + image[2:]
    smooth = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:] + 4 * image[1:-1, 1:-1]) / 13
    border = jnp.pad(jnp.zeros((*smooth.shape[:2], 1), bool), ((1, 1), (1, 1), (0, 0)), constant_values=True)
    degenerate = jnp.where(border, image, jnp.pad(smooth, ((1, 1), (1, 1), (0, 0))))
    return _blend(degenerate, image, _factor(level, sign))


def _solarize(image: jax.Array, level: float, sign: jax.Array) -> jax.Array:
    return jnp.where(image >= 256 - 256 * level, 255 - image, image)


def _posterize(image: jax.Array, level: float, sign: jax.Array) -> jax.Array:
    """Keep the top 8 - floor(4 level) bits."""
    step = 2 ** int(4 * level)
    return image if step == 1 else jnp.floor(image / step) * step


def _affine(
    matrix: list[list[jax.Array | float]], offset: tuple[jax.Array | float, jax.Array | float] = (0.0, 0.0)
) -> jax.Array:
    """[2, 3]: source (row, col) = matrix @ (output - centre) + centre + offset."""
    return jnp.concatenate([jnp.array(matrix, jnp.float32), jnp.array(offset, jnp.float32)[:, None]], axis=1)


def _rotate(level: float, sign: jax.Array, shape: tuple[int, int]) -> jax.Array:
    angle = sign * level * math.pi / 6
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    return _affine([[cos, -sin], [sin, cos]])


def _shear_x(level: float, sign: jax.Array, shape: tuple[int, int]) -> jax.Array:
    return _affine([[1.0, 0.0], [0.3 * level * sign, 1.0]])


def _shear_y(level: float, sign: jax.Array, shape: tuple[int, int]) -> jax.Array:
    return _affine([[1.0, 0.3 * level * sign], [0.0, 1.0]])


def _translate_x(level: float, sign: jax.Array, shape: tuple[int, int]) -> jax.Array:
    return _affine([[1.0, 0.0], [0.0, 1.0]], (0.0, 0.45 * level * sign * shape[1]))


def _translate_y(level: float, sign: jax.Array, shape: tuple[int, int]) -> jax.Array:
    return _affine([[1.0, 0.0], [0.0, 1.0]], (0.45 * level * sign * shape[0], 0.0))


def _warp(image: jax.Array, affine: jax.Array) -> jax.Array:
    """Sample `image` bilinearly where `affine` maps each output pixel, FILL outside."""
    height, width = image.shape[:2]
    centre = jnp.array([(height - 1) / 2, (width - 1) / 2], jnp.float32)[:, None, None]
    grid = jnp.stack(jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")).astype(jnp.float32)
    source = jnp.einsum("ij,jhw->ihw", affine[:, :2], grid - centre) + centre + affine[:, 2, None, None]

    def sample(channel: jax.Array) -> jax.Array:
        return map_coordinates(channel, list(source), order=1, mode="constant", cval=FILL)

    return jax.vmap(sample, in_axes=-1, out_axes=-1)(image)


_PixelOp = Callable[[jax.Array, float, jax.Array], jax.Array]
_GeometricOp = Callable[[float, jax.Array, tuple[int, int]], jax.Array]
_PIXEL_OPS: dict[str, _PixelOp] = {
    "identity": _identity,
    "autocontrast": _autocontrast,
    "equalize": _equalize,
    "brightness": _brightness,
    "color": _color,
    "contrast": _contrast,
    "sharpness": _sharpness,
    "solarize": _solarize,
    "posterize": _posterize,
}
_GEOMETRIC_OPS: dict[str, _GeometricOp] = {
    "rotate": _rotate,
    "shear_x": _shear_x,
    "shear_y": _shear_y,
    "translate_x": _translate_x,
    "translate_y": _translate_y,
}
OPS: tuple[str, ...] = (*_PIXEL_OPS, *_GEOMETRIC_OPS)  # RandAugment op names; `apply_op` takes an index


# --------------------------------------------------------------------------- mixup


def mixup(
    key: jax.Array, images: jax.Array, labels: jax.Array, num_classes: int, alpha: float
) -> tuple[jax.Array, jax.Array]:
    """float images [B,...], int labels [B] -> mixed images and soft labels [B, num_classes] (one-hot when alpha == 0).

    Example i is mixed with example B-1-i (so with an odd B the middle one with itself); alpha is static.
    """
    one_hot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    if alpha == 0:
        return images, one_hot
    weight = jax.random.beta(key, alpha, alpha)

    def mix(x: jax.Array) -> jax.Array:
        return weight.astype(x.dtype) * x + (1 - weight).astype(x.dtype) * jnp.flip(x, axis=0)

    return mix(images), mix(one_hot)
