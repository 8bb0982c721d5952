"""Vision Transformer of any width and depth; by default a small one on the embedded digits.

Command (about a minute on 2 CPU cores):
  scaling train --config configs/vit.py:width=64,depth=4,num_heads=4,patch_size=2 --workdir runs/vit
The argument sets any model knob: width, depth, num_heads, mlp_ratio, patch_size, pool (patch_size, unless
given: 2 for the 8x8 digits, 16 for images of 64 pixels and more, e.g. ImageNet), and how the same model computes:
attention (xla, or cudnn: cuDNN flash attention on NVIDIA GPUs in bfloat16), fused_qkv (one projection to queries,
keys and values; True by default), scan_blocks (one compiled block scanned over the depth: bounded compile time for
ViT-L/H) and remat (off, full, dots_saveable, dots_with_no_batch_dims_saveable: what the backward pass recomputes).
"""

from scaling.config.defaults import base_config
from scaling.config.loading import set_config_arg


def get_config(arg: str | None = None):
    """ViT config; `arg` is `key=value,...` over the model knobs."""
    config = base_config("vit")
    config.model.update(width=64, depth=4, num_heads=4, patch_size=None, pool="gap")  # None: by the image size
    set_config_arg(config.model, arg)
    config.train.batch_size = 128
    config.train.epochs = 30.0
    config.train.eval_every_steps = 50
    config.optim.lr = 1e-3
    config.optim.weight_decay = 0.05
    return config
