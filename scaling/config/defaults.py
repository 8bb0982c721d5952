"""The base config every config file starts from: every key the trainer reads, with its default."""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from scaling.models import default_model_config

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "linear", "constant", "wsd", "step")
WANDB_MODES = ("offline", "online", "disabled")
DURATIONS = ("steps", "examples", "epochs", "flops")


def base_config(model_name: str) -> ml_collections.ConfigDict:
    """Defaults for all sections; `model` holds the knobs of family `model_name`. Keys are locked."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.model = default_model_config(model_name)

    config.data = ml_collections.ConfigDict()
    config.data.name = "digits"  # any tfds image-classification dataset
    config.data.data_dir = placeholder(str)  # None: tfds' default (~/tensorflow_datasets)
    config.data.train_split = "train"
    config.data.eval_split = placeholder(str)  # None: the dataset's usual one (validation for ImageNet)
    config.data.classes = placeholder(int)  # class subset: the first K of a seeded class order; None: all
    config.data.train_examples = placeholder(int)  # nested class-balanced subset; None: whole split
    config.data.examples_per_class = placeholder(int)  # or the subset's size per class
    config.data.minival_per_class = 0  # held out of train_split for model selection, per class
    config.data.resolution = placeholder(int)  # None: the stored image size
    config.data.extra_eval = ()  # more evaluation sets in the same label space, e.g. ("imagenet_v2", "imagenet2012_real")
    config.data.eval_crop_fraction = 1.0  # evaluation: central square of this fraction of the short side
    config.data.pipeline = "cache"  # one of PIPELINES: uint8 cache + device augmentation, or host streaming
    config.data.cache_dir = placeholder(str)  # None: scaling_cache/ in the tfds data_dir
    config.data.seed = 0  # seeds the class order, minival, subset order, batch order and augmentation
    config.data.augment = ml_collections.ConfigDict()  # training augmentation (scaling.data.augment)
    config.data.augment.inception_crop = False  # random-resized crop (on the host when streaming)
    config.data.augment.min_area = 0.08
    config.data.augment.flip = False
    config.data.augment.randaugment_ops = 0  # 0: off
    config.data.augment.randaugment_magnitude = 9.0
    config.data.augment.mixup_alpha = 0.0  # 0: off

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 128  # global batch, divided over the mesh's data axis
    config.train.steps = placeholder(int)  # duration: exactly one of steps, examples, epochs, flops
    config.train.examples = placeholder(int)
    config.train.epochs = placeholder(float)
    config.train.flops = placeholder(float)  # a compute budget: training FLOPs of the whole run
    config.train.label_smoothing = 0.0
    config.train.compute_dtype = "float32"  # or bfloat16: activations and matmuls; parameters and optimizer stay float32
    config.train.microbatches = 1  # gradient accumulation: the batch is processed in this many equal parts
    config.train.log_every_steps = 20
    config.train.eval_every_steps = 0  # 0: evaluate only at the end
    config.train.eval_batch_size = 256
    config.train.checkpoint_every_steps = 200
    config.train.keep_checkpoints = 2
    config.train.compilation_cache_dir = placeholder(str)  # persistent XLA cache; None: ~/.cache/imagenet-scaling/xla
    config.train.keep_checkpoint_fractions = ()  # also save and keep forever at these fractions of the run
    # Cooldown branch (Hägele et al. 2024): this config describes the trunk, a constant-LR run whose
    # workdir is `branch_from` (relative paths are siblings of this run's workdir). The branch starts
    # from the trunk's checkpoint at `branch_fraction` of its steps, then decays the LR linearly to 0
    # over optim.cooldown_fraction of the branch's own length.
    config.train.branch_from = placeholder(str)
    config.train.branch_fraction = placeholder(float)

    config.optim = ml_collections.ConfigDict()
    config.optim.name = "adamw"  # one of OPTIMIZERS
    config.optim.lr = 1e-3  # peak learning rate
    config.optim.weight_decay = 1e-4  # decoupled; not applied to biases and norm scales
    config.optim.momentum = 0.9  # sgd momentum, adamw beta1
    config.optim.beta2 = 0.999
    config.optim.schedule = "cosine"  # one of SCHEDULES; wsd = warmup, constant, cooldown
    config.optim.warmup_fraction = 0.05
    config.optim.cooldown_fraction = 0.2  # wsd only: final fraction of steps decaying to zero
    config.optim.step_boundaries = (1 / 3, 2 / 3, 8 / 9)  # step only: fractions of the run (ResNet: epochs 30, 60, 80 of 90)
    config.optim.step_factor = 0.1  # step only: LR multiplier at each boundary
    config.optim.grad_clip_norm = placeholder(float)

    config.mesh = ml_collections.ConfigDict()
    config.mesh.data = -1  # devices on each axis; one axis may be -1: the devices the others leave
    config.mesh.fsdp = 1  # parameters and optimizer state split along their largest divisible dimension
    config.mesh.tensor = 1  # ViT attention heads and MLP hidden units split (tensor parallelism)
    config.mesh.fsdp_min_size = 16384  # arrays with fewer elements stay replicated

    config.wandb = ml_collections.ConfigDict()
    config.wandb.mode = "offline"  # one of WANDB_MODES
    config.wandb.project = "imagenet-scaling"
    config.wandb.group = placeholder(str)

    config.lock()
    return config
