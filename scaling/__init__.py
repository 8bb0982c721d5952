"""Training half of the ImageNet scaling-law suite: configs, models, data, training, records."""
