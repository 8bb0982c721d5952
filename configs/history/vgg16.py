"""VGG-16 (Simonyan and Zisserman 2014, configuration D) with the paper's recipe.

Published: ILSVRC-2012 validation, single scale (train 256, test 256), top-1 error 27.0%, top-5 8.8%
(Table 3). Recipe: SGD momentum 0.9, batch 256, LR 0.01 divided by 10 three times, weight decay 5e-4,
dropout 0.5, 74 epochs. Departures: no initialisation from the shallower net A (modern
initialisation instead), inception crops instead of fixed-scale 224 crops, Nesterov momentum.
  scaling train --config configs/history/vgg16.py --config.data.data_dir DIR --workdir runs/history/vgg16
  scaling train --config configs/history/vgg16.py:cheap --config.data.data_dir DIR \
      --workdir runs/history/vgg16-64px
`:cheap` trains on your prepared imagenet2012 resized to 64 pixels (cached once); `:cheap=imagenet_resized`
on tfds' imagenet_resized/64x64 instead (downloaded by tfds).
"""

from scaling.config.recipes import historic_recipe


def get_config(arg=None):
    """VGG-16 on ImageNet (or `cheap`: imagenet2012 at 64 pixels; `cheap=imagenet_resized`)."""
    config = historic_recipe("vgg16", arg, {
        "name": "VGG-16 (Simonyan and Zisserman 2014)", "year": 2014, "top1_error": 0.270, "top5_error": 0.088,
        "source": "Simonyan & Zisserman 2015, ICLR, Table 3 (config D, S=256, Q=256, validation)",
    })
    config.optim.update(name="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step", warmup_fraction=0.0)
    config.train.update(batch_size=256, epochs=74.0)
    return config
