"""The history of ImageNet accuracy: the record (ILSVRC winners, papers, records), its fits and plots, runs of
the suite on the same axes, and the `scaling history` commands."""
