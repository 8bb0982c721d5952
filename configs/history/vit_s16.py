"""ViT-S/16 ImageNet-1k baseline in 90 epochs (Beyer, Zhai and Kolesnikov 2022, "Better plain ViT
baselines for ImageNet-1k").

Published: ImageNet validation top-1 accuracy 76.5% at 90 epochs (Table/Figure 1), top-1 error 23.5%.
Recipe: batch 1024, AdamW (beta2 0.999) LR 1e-3, 10k warmup steps then cosine, decoupled weight decay
1e-4 (here 0.1 x LR, the same decay), global average pooling head, inception crop, flip, RandAugment
(2, 10), mixup 0.2. Departures: learned (not 2-D sin-cos) position embeddings, softmax instead of
sigmoid cross-entropy.
  scaling train --config configs/history/vit_s16.py --config.data.data_dir DIR --workdir runs/history/vit-s16
  scaling train --config configs/history/vit_s16.py:cheap --config.data.data_dir DIR \
      --workdir runs/history/vit-s16-64px
`:cheap` trains on your prepared imagenet2012 resized to 64 pixels (cached once); `:cheap=imagenet_resized`
on tfds' imagenet_resized/64x64 instead (downloaded by tfds).
"""

from scaling.config.recipes import historic_recipe


def get_config(arg=None):
    """ViT-S/16 on ImageNet (or `cheap`: imagenet2012 at 64 pixels; `cheap=imagenet_resized`)."""
    config = historic_recipe("vit-s/16", arg, {
        "name": "ViT-S/16, 90 epochs (Beyer et al. 2022)", "year": 2022, "top1_error": 0.235, "top5_error": None,
        "source": "Beyer, Zhai & Kolesnikov 2022, arXiv:2205.01580 (90 epochs: 76.5% top-1)",
    })
    config.model.pool = "gap"
    config.optim.update(name="adamw", lr=1e-3, beta2=0.999, weight_decay=0.1, schedule="cosine",
                        warmup_fraction=10_000 / (90 * 1_281_167 / 1024))
    config.data.augment.update(randaugment_ops=2, randaugment_magnitude=10.0, mixup_alpha=0.2)
    config.train.update(batch_size=1024, epochs=90.0)
    return config
