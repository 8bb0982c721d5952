"""ResNet-50 (He et al. 2015) with the classic 90-epoch recipe.

Published: ILSVRC-2012 validation, single crop, top-1 error 24.7%, top-5 7.8% (the authors' released
model; 10-crop 22.85% / 6.71% in Table 3). Recipe: SGD momentum 0.9, batch 256, LR 0.1 divided by 10 at
epochs 30, 60 and 80 of 90, weight decay 1e-4. Departures: v1.5 (stride on the 3x3 convolution),
inception crops instead of scale augmentation, Nesterov momentum.
  scaling train --config configs/history/resnet50.py --config.data.data_dir DIR --workdir runs/history/resnet50
  scaling train --config configs/history/resnet50.py:cheap --config.data.data_dir DIR \
      --workdir runs/history/resnet50-64px
`:cheap` trains on your prepared imagenet2012 resized to 64 pixels (cached once); `:cheap=imagenet_resized`
on tfds' imagenet_resized/64x64 instead (downloaded by tfds).
"""

from scaling.config.recipes import historic_recipe


def get_config(arg=None):
    """ResNet-50 on ImageNet (or `cheap`: imagenet2012 at 64 pixels; `cheap=imagenet_resized`)."""
    config = historic_recipe("resnet50", arg, {
        "name": "ResNet-50 (He et al. 2015)", "year": 2015, "top1_error": 0.247, "top5_error": 0.078,
        "source": "He et al. 2016, CVPR; github KaimingHe/deep-residual-networks (1-crop 24.7/7.8)",
    })
    config.optim.update(name="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="step", warmup_fraction=0.0)
    config.train.update(batch_size=256, epochs=90.0)
    return config
