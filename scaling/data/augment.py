"""On-device training augmentation: pure JAX, deterministic given a key, one key per example.

`augment_images` maps a uint8 batch [B, H, W, C] to float32 [B, size, size, C] in 0..255
(normalisation happens later) by inception crop, then horizontal flip, then RandAugment, each
optional; `mixup` mixes a float batch and returns soft labels. Example i's crop, flip and RandAugment
signs use `jax.random.split(key, B)[i]`, the RandAugment ops of sub-batch g use
`jax.random.split(jax.random.fold_in(key, B), groups)[g]`, so the output is a pure function of (key, position
in the batch, batch size), whatever the batch's sharding.

Recipes and where this departs from them:

* Inception crop (Szegedy et al. 2015; TF-slim `distorted_bounding_box_crop`): area fraction
  uniform in [min_area, 1], aspect ratio in [3/4, 4/3] sampled log-uniformly (as torchvision/timm;
  TF samples it uniformly), resized back with antialiased bilinear `jax.image.scale_and_translate`
  (TF: bilinear without antialiasing). The box is sub-pixel rather than rounded to whole pixels.
  Of 10 candidate boxes the first that fits is taken, else the whole image (TF: 100 attempts).
* Flip: horizontal with p = 0.5.
* RandAugment (Cubuk et al. 2020): the paper's 14 ops (`OPS`), N per image, each always applied
  (timm applies each with p = 0.5), after crop and flip at the output size (as timm). Ops are dealt
  out, not drawn independently (timm and big_vision draw each image's op on its own): the batch is cut
  into `randaugment_groups` contiguous sub-batches of b images; for each of the N layers, each
  sub-batch's images are shuffled into 14 n slots (n = ceil(b / 14), the 14 n - b spare slots take
  padding) and slot s gets op s // n. Each image's op is still uniform over the 14 and independent
  across layers and sub-batches, but within a sub-batch no op goes to more than n images (sampling
  without replacement: when b is a multiple of 14 every op goes to exactly b / 14). Magnitude M in
  [0, 10] maps as timm's "increasing" variants, so M = 0 leaves every op but
  autocontrast and equalize (which take no magnitude) the identity: brightness/colour/contrast/
  sharpness factor 1 +- 0.9 M/10 (TF: 0.1 + 1.8 M/10), solarize threshold 256 - 25.6 M, posterize
  keeps 8 - floor(0.4 M) bits (TF: floor(0.4 M)), rotate +-3 M degrees, shear +-0.03 M, translate
  +-0.045 M of the image side (timm's translate_pct 0.45), signs random. Rotate and shear turn
  about the image centre (PIL/TF shear about the top-left corner); geometric ops sample
  bilinearly and fill with 128 (TF's replace value). Images stay float between ops, clipped to
  [0, 255] but not re-quantised to uint8 as PIL would.
* Mixup (Zhang et al. 2018): one lambda ~ Beta(alpha, alpha) per batch, each example mixed with
  the batch reversed (timm's default; batches are already random permutations of the data).

Cost: a RandAugment layer costs one op per image (plus the 14 n - b padding slots and two gathers of
the sub-batch), with no data-dependent branch, so also under the pack's vmap. (A per-image op picked by
`lax.switch` runs all 14 ops on every image under vmap, and so would a switch on one op per sub-batch,
since the train step is vmapped over the pack's members.) Sub-batches are contiguous slices of the
batch: when each lies within one device's share, the shuffle moves no image between devices. The
default (`randaugment_groups` 0) takes the most sub-batches that keep at least `GROUP_IMAGES` (128)
images in each, e.g. 8 of 128 for a batch of 1,024: local while each device's share is a multiple of 128.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

from scaling.errors import ConfigError

FILL = 128.0  # value geometric ops give pixels from outside the image
CROP_ATTEMPTS = 10  # candidate inception-crop boxes per image
GROUP_IMAGES = 128  # least images per RandAugment sub-batch when `randaugment_groups` is 0


@dataclasses.dataclass(frozen=True)
class Augment:
    """Which training augmentations to apply (config `data.augment`)."""

    inception_crop: bool = False  # random-resized crop, resized back to the output size
    min_area: float = 0.08  # smallest crop area, as a fraction of the image
    flip: bool = False  # horizontal flip with p = 0.5
    randaugment_ops: int = 0  # RandAugment ops per image; 0 = off
    randaugment_magnitude: float = 9.0  # RandAugment M, on its 0..10 scale
    randaugment_groups: int = 0  # sub-batches RandAugment deals its ops out over; 0 = of >= GROUP_IMAGES images
    mixup_alpha: float = 0.0  # mixup lambda ~ Beta(alpha, alpha); 0 = off

    @property
    def active(self) -> bool:
        """Whether any augmentation is on."""
        return self.inception_crop or self.flip or self.randaugment_ops > 0 or self.mixup_alpha > 0

    def groups(self, batch: int) -> int:
        """RandAugment's sub-batches in a batch of `batch`: `randaugment_groups`, or when 0 the most that keep
        at least GROUP_IMAGES images in each (one when the batch is smaller)."""
        if self.randaugment_groups:
            if batch % self.randaugment_groups:
                raise ConfigError(f"data.augment.randaugment_groups={self.randaugment_groups} does not divide the "
                                  f"batch of {batch}; set it to a divisor of the batch (or 0: automatic)")
            return self.randaugment_groups
        return max([g for g in range(1, batch // GROUP_IMAGES + 1) if batch % g == 0], default=1)


def augment_images(key: jax.Array, images: jax.Array, augment: Augment, size: int | None = None) -> jax.Array:
    """uint8 [B,H,W,C] -> float32 [B,size,size,C] (size defaults to H): crop, flip, RandAugment (not mixup)."""
    batch, size = images.shape[0], images.shape[1] if size is None else size
    images, signs = jax.vmap(lambda k, image: _augment_one(k, image, augment, size))(
        jax.random.split(key, batch), images
    )
    if not augment.randaugment_ops:
        return images
    groups = augment.groups(batch)
    sub_batches = jax.vmap(lambda k, x, s: _randaugment(k, x, s, augment.randaugment_magnitude))(
        jax.random.split(jax.random.fold_in(key, batch), groups),
        images.reshape(groups, batch // groups, *images.shape[1:]),
        signs.reshape(groups, batch // groups, -1),
    )
    return sub_batches.reshape(images.shape)


def _augment_one(key: jax.Array, image: jax.Array, augment: Augment, size: int) -> tuple[jax.Array, jax.Array]:
    """Crop and flip of one image, and its RandAugment sign (+1 or -1) per layer [randaugment_ops]."""
    crop_key, flip_key, sign_key = jax.random.split(key, 3)
    image = image.astype(jnp.float32)
    height, width = image.shape[:2]
    if augment.inception_crop:
        image = _resize_box(image, _sample_crop_box(crop_key, height, width, augment.min_area), size)
    elif (height, width) != (size, size):
        image = _resize_box(image, (0.0, 0.0, height, width), size)
    if augment.flip:
        image = jnp.where(jax.random.bernoulli(flip_key), image[:, ::-1], image)
    return image, jnp.where(jax.random.bernoulli(sign_key, shape=(augment.randaugment_ops,)), 1.0, -1.0)


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


def _randaugment(key: jax.Array, images: jax.Array, signs: jax.Array, magnitude: float) -> jax.Array:
    """RandAugment of a sub-batch [b,H,W,C] with signs [b, N]: per layer, the images shuffled into 14 n slots
    (n = ceil(b / 14); the spare slots hold copies of the last image, whose results are dropped), slot s given
    op s // n."""
    batch, num_ops = signs.shape
    per_op = -(-batch // len(OPS))

    def layer(images: jax.Array, inputs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        layer_key, sign = inputs
        slot_of_image = jax.random.permutation(layer_key, per_op * len(OPS))
        image_of_slot = jnp.minimum(jnp.argsort(slot_of_image), batch - 1).reshape(len(OPS), per_op)
        slots = apply_ops(images[image_of_slot], sign[image_of_slot], magnitude)
        return slots.reshape(-1, *images.shape[1:])[slot_of_image[:batch]], None

    return jax.lax.scan(layer, images, (jax.random.split(key, num_ops), signs.T))[0]


def apply_ops(images: jax.Array, signs: jax.Array, magnitude: float) -> jax.Array:
    """RandAugment op `OPS[k]` at magnitude M (0..10) on each image of row k of float images [len(OPS), n, H, W, C]
    in 0..255 (the geometric ops share one warp).

    `signs` [len(OPS), n] (+1 or -1) pick the direction of signed ops (rotate, shear, translate, enhance factors).
    """
    level, num_pixel, shape = magnitude / 10, len(_PIXEL_OPS), images.shape[2:4]
    pixel = [jax.vmap(lambda x, s, fn=fn: fn(x, level, s))(x, s)
             for fn, x, s in zip(_PIXEL_OPS.values(), images[:num_pixel], signs[:num_pixel], strict=True)]
    affines = [jax.vmap(lambda s, fn=fn: fn(level, s, shape))(s)
               for fn, s in zip(_GEOMETRIC_OPS.values(), signs[num_pixel:], strict=True)]
    geometric = images[num_pixel:].reshape(-1, *images.shape[2:])
    geometric = jax.vmap(_warp)(geometric, jnp.concatenate(affines)).reshape(images[num_pixel:].shape)
    return jnp.concatenate([jnp.stack(pixel), geometric])


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
OPS: tuple[str, ...] = (*_PIXEL_OPS, *_GEOMETRIC_OPS)  # RandAugment op names, in `apply_ops`' order


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
