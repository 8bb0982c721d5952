"""The base config every config file starts from: every key the trainer reads, with its default and the
values it allows (its rule, checked by `scaling.schema`; the model's knobs are declared by each
family in scaling/models/), and `apply_dataset_defaults`, which decides the keys a config leaves to its
dataset (ImageNet's resolution, normalisation, stem and patch sizes)."""

from __future__ import annotations

from typing import Any

import ml_collections

from scaling.data.pipeline import default_resolution, known_image_side, normalization_kind
from scaling.models import default_model_config
from scaling.schema import Field, config_from

_FILL = "-1: the devices the other axes leave"

FIELDS: dict[str, Field] = {
    "seed": Field(0, "count"),
    "data.name": Field("digits", "str"),  # any tfds image-classification dataset, or "synthetic" (data.synthetic)
    # synthetic: generated in memory (scaling.data.synthetic) at data.resolution (default 224), 3 channels
    "data.synthetic.classes": Field(1000, "int"),
    "data.synthetic.train_examples": Field(4096, "int"),  # size of split "train"
    "data.synthetic.eval_examples": Field(1024, "int"),  # size of split "validation"
    "data.synthetic.seed": Field(0, "count"),  # the dataset's own seed: its patterns, labels and noise
    "data.data_dir": Field(None, "str|None"),  # None: tfds' default (~/tensorflow_datasets)
    "data.train_split": Field("train", "str"),
    "data.eval_split": Field(None, "str|None"),  # None: the dataset's usual one (validation for ImageNet)
    "data.classes": Field(None, "int|None", "None: all"),  # class subset: the first K of a seeded class order
    "data.train_examples": Field(None, "int|None", "None: the whole split"),  # nested class-balanced subset
    "data.examples_per_class": Field(None, "int|None"),  # or the subset's size per class
    "data.minival_per_class": Field(0, "count", "0: no minival"),  # held out of train_split for model selection
    # None: the stored image size, or 224 for ImageNet-family datasets whose images vary in size (set at load)
    "data.resolution": Field(None, "int|None", "None: the stored image size (224 for ImageNet)"),
    # per-channel mean and std: "imagenet" (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225); "estimate": from the
    # first 10,000 training images of the subset; "auto": imagenet for ImageNet-family datasets, else estimate
    "data.normalization": Field("auto", ("auto", "imagenet", "estimate")),
    "data.extra_eval": Field((), "strs"),  # more evaluation sets in the same label space, e.g. ("imagenet_v2",)
    # evaluation: central square of this fraction of the short side
    "data.eval_crop_fraction": Field(1.0, "portion", "e.g. 0.875"),
    # uint8 cache + device augmentation, or host streaming of full-resolution records
    "data.pipeline": Field("cache", ("cache", "stream")),
    "data.cache_dir": Field(None, "str|None"),  # None: scaling_cache/ in the tfds data_dir (may be gs://)
    # node-local copies of the caches (scaling.data.staging), e.g. "$SLURM_TMPDIR/scaling_cache"; None: read the
    # shared ones in place
    "data.local_cache_dir": Field(None, "str|None"),
    "data.seed": Field(0, "count"),  # seeds the class order, minival, subset order, batch order and augmentation
    # training augmentation (scaling.data.augment)
    "data.augment.inception_crop": Field(False, "bool"),  # random-resized crop (on the host when streaming)
    "data.augment.min_area": Field(0.08, "portion"),  # smallest crop area, as a fraction of the image
    "data.augment.flip": Field(False, "bool"),
    "data.augment.randaugment_ops": Field(0, "count", "0: off"),
    "data.augment.randaugment_magnitude": Field(9.0, "magnitude"),
    # RandAugment's ops are dealt out within this many sub-batches of the global batch (scaling.data.augment)
    "data.augment.randaugment_groups": Field(0, "count", "0: sub-batches of at least 128 images"),
    "data.augment.mixup_alpha": Field(0.0, "number", "0: off"),
    "train.batch_size": Field(128, "int"),  # global batch, divided over the mesh's data x fsdp axes
    # duration: exactly one of steps, examples, epochs, flops (a compute budget: training FLOPs of the run)
    "train.steps": Field(None, "int|None"),
    "train.examples": Field(None, "int|None"),
    "train.epochs": Field(None, "float|None"),
    "train.flops": Field(None, "float|None"),
    "train.label_smoothing": Field(0.0, "fraction"),
    # activations, matmuls and convolutions; parameters and optimizer state stay float32. "auto" is decided on the
    # run's devices when its program is built (scaling.runtime.devices.resolved_compute_dtype), never at config load
    "train.compute_dtype": Field("auto", ("auto", "float32", "bfloat16"),
                                 "auto: bfloat16 on GPU and TPU, float32 on CPU"),
    "train.microbatches": Field(1, "int"),  # gradient accumulation: the batch is processed in this many equal parts
    "train.log_every_steps": Field(20, "int"),
    "train.eval_every_steps": Field(0, "count", "0: evaluate only at the end"),
    "train.eval_batch_size": Field(256, "int"),
    "train.checkpoint_every_steps": Field(200, "int"),
    # also checkpoint once this many minutes have passed since the last checkpoint (single-process runs only)
    "train.checkpoint_every_minutes": Field(None, "float|None"),
    "train.keep_checkpoints": Field(2, "int"),
    "train.compilation_cache_dir": Field(None, "str|None"),  # persistent XLA cache; None: ~/.cache/imagenet-scaling/xla
    "train.keep_checkpoint_fractions": Field((), "portions"),  # also kept forever: at these fractions of the run
    # Cooldown branch (Hägele et al. 2024): this config describes the trunk, a constant-LR run whose
    # workdir is `branch_from` (relative paths are siblings of this run's workdir). The branch starts
    # from the trunk's checkpoint at `branch_fraction` of its steps, then decays the LR linearly to 0
    # over optim.cooldown_fraction of the branch's own length.
    "train.branch_from": Field(None, "str|None"),
    "train.branch_fraction": Field(None, "portion|None"),
    "optim.name": Field("adamw", ("adamw", "sgd")),
    "optim.lr": Field(1e-3, "float"),  # peak learning rate
    "optim.weight_decay": Field(1e-4, "number"),  # decoupled; not applied to biases and norm scales
    "optim.momentum": Field(0.9, "fraction", "sgd momentum and adamw beta1, e.g. 0.9"),
    "optim.beta2": Field(0.999, "fraction", "adamw beta2, e.g. 0.999"),
    # wsd = warmup, constant, cooldown; step = times step_factor at each of step_boundaries
    "optim.schedule": Field("cosine", ("cosine", "linear", "constant", "wsd", "step")),
    "optim.warmup_fraction": Field(0.05, "fraction"),
    "optim.cooldown_fraction": Field(0.2, "fraction"),  # wsd and cooldown branches: final fraction decaying to zero
    # step only: fractions of the run (ResNet: epochs 30, 60, 80 of 90)
    "optim.step_boundaries": Field((1 / 3, 2 / 3, 8 / 9), "portions"),
    "optim.step_factor": Field(0.1, "portion"),  # step only: LR multiplier at each boundary
    "optim.grad_clip_norm": Field(None, "float|None"),
    # devices on each axis (scaling.config.mesh); one axis may be -1
    "mesh.data": Field(-1, "axis", _FILL),
    "mesh.fsdp": Field(1, "axis", _FILL),  # parameters and optimizer state split along a divisible dimension
    "mesh.tensor": Field(1, "axis", _FILL),  # tensor parallelism: the model family's PARTITION_RULES split arrays
    "mesh.fsdp_min_size": Field(16384, "int"),  # arrays with fewer elements stay replicated
    "wandb.mode": Field("offline", ("offline", "online", "disabled")),
    "wandb.project": Field("imagenet-scaling", "str"),
    "wandb.group": Field(None, "str|None"),
    "tensorboard.enabled": Field(False, "bool"),  # also write TensorBoard event files to WORKDIR/tensorboard/
}

# Keys users may know by another name (an override of one names the key to set instead).
KEY_ALIASES: dict[str, str] = {"optim.beta1": "optim.momentum"}


# Model knobs that follow the image size when a config file leaves them None (configs/resnet.py, bit.py,
# convnext.py, vit.py): (family, knob) -> (value for small images such as the 8x8 digits, value for images
# of at least LARGE_IMAGE pixels, e.g. ImageNet at 64 or 224).
LARGE_IMAGE = 64
IMAGE_SIZE_KNOBS: dict[tuple[str, str], tuple[Any, Any]] = {
    ("resnet", "stem"): ("small", "imagenet"),
    ("bit", "stem"): ("small", "imagenet"),
    ("convnext", "patch_size"): (1, 4),
    ("vit", "patch_size"): (2, 16),
}


def base_config(model_name: str) -> ml_collections.ConfigDict:
    """Every key of `FIELDS` with its default, and `model` with the knobs of family `model_name`. Keys are locked."""
    config = config_from(FIELDS)
    config.model = default_model_config(model_name)
    config.lock()
    return config


def apply_dataset_defaults(config: ml_collections.ConfigDict) -> None:
    """Decide, for config.data.name, the keys left to the dataset (load_config calls it after the overrides, so
    config.json records what the run used): data.resolution None becomes 224 for ImageNet-family datasets whose
    images vary in size; data.normalization "auto" becomes "imagenet" for ImageNet-family datasets, else
    "estimate"; an IMAGE_SIZE_KNOBS knob left None takes its large-image value when the images are known to be
    at least LARGE_IMAGE pixels (data.resolution, or imagenet_resized/NxN), else its small-image value."""
    data = config.data
    if data.resolution is None:
        data.resolution = default_resolution(data.name)
    data.normalization = normalization_kind(data)
    side = known_image_side(data)
    for (family, knob), (small, large) in IMAGE_SIZE_KNOBS.items():
        if config.model.get("name") == family and config.model.get(knob, "") is None:
            config.model[knob] = large if side is not None and side >= LARGE_IMAGE else small
