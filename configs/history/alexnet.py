"""AlexNet (Krizhevsky, Sutskever and Hinton 2012), one-tower variant, with the paper's recipe.

Published: one CNN, ILSVRC-2012 validation, top-1 error 40.7%, top-5 18.2% (Table 2; 10-crop test).
Recipe: SGD momentum 0.9, batch 128, LR 0.01 divided by 10 three times (at plateaus; here at fixed
fractions), weight decay 5e-4, about 90 epochs. Departures: one tower (no grouped convolutions),
inception crops instead of 224 crops of 256 images and no PCA colour noise, Nesterov momentum,
single central-crop evaluation.
  scaling train --config configs/history/alexnet.py --config.data.data_dir DIR --workdir runs/history/alexnet
  scaling train --config configs/history/alexnet.py:cheap --config.data.data_dir DIR \
      --workdir runs/history/alexnet-64px
`:cheap` trains on your prepared imagenet2012 resized to 64 pixels (cached once); `:cheap=imagenet_resized`
on tfds' imagenet_resized/64x64 instead (downloaded by tfds).
"""

from scaling.config.recipes import historic_recipe


def get_config(arg=None):
    """AlexNet on ImageNet (or `cheap`: imagenet2012 at 64 pixels; `cheap=imagenet_resized`)."""
    config = historic_recipe("alexnet", arg, {
        "name": "AlexNet (Krizhevsky et al. 2012)", "year": 2012, "top1_error": 0.407, "top5_error": 0.182,
        "source": "Krizhevsky et al. 2012, NeurIPS, Table 2 (1 CNN, validation, 10-crop test)",
    })
    config.optim.update(name="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step", warmup_fraction=0.0)
    config.train.update(batch_size=128, epochs=90.0)
    return config
