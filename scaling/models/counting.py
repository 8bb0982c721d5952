"""Analytic parameter and forward multiply-add counts, added up layer by layer by each family's `count`.

Multiply-adds (MACs) per image: a convolution costs out_h * out_w * k * k * c_in * c_out / groups,
a dense layer in * out per token, attention its two matmuls (Q K^T and A V: 2 * tokens^2 * width).
Biases, normalisation, activations, pooling, softmax and residual additions are not counted (the
usual convention of published counts). 1 multiply-add = 2 FLOPs; see scaling.program.flops.

XLA's count of the train step (scaling.program.flops) departs from 3 x 2 x these multiply-adds in three
ways: it skips the taps of a convolution that fall on zero padding (large on small feature maps),
it computes no gradient for the input images (one layer's backward less), and it counts
elementwise work (norms, activations, softmax). At 224x224 and 1000 classes XLA / analytic is
0.910 for ResNet-18, 0.965 ResNet-50, 0.966 BiT-R50x1, 0.89 AlexNet, 0.967 VGG-16, 1.001 ViT-B/16
and 1.006 ConvNeXt-T.
"""

from __future__ import annotations

import dataclasses
import itertools

from scaling.models.layers import conv_size

Size = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Counts:
    """Parameters (all, and the classifier head's) and forward multiply-adds per image."""

    params: int
    head_params: int
    macs: int

    @property
    def body_params(self) -> int:
        """Parameters without the classifier head."""
        return self.params - self.head_params


class Tally:
    """Running count of a network's parameters and forward multiply-adds, one layer at a time."""

    def __init__(self) -> None:
        self.params = 0
        self.macs = 0
        self.head_params = 0

    def conv(self, size: Size, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int | None = None,
             groups: int = 1, bias: bool = False) -> Size:
        """Add a square conv (padding defaults to kernel // 2) on a `size` input; returns the output size."""
        pad = kernel // 2 if padding is None else padding
        out = (conv_size(size[0], kernel, stride, pad), conv_size(size[1], kernel, stride, pad))
        weights = kernel * kernel * (c_in // groups) * c_out
        self.params += weights + bias * c_out
        self.macs += out[0] * out[1] * weights
        return out

    def dense(self, d_in: int, d_out: int, tokens: int = 1, bias: bool = True) -> None:
        """Add a dense layer applied to `tokens` vectors."""
        self.params += d_in * d_out + bias * d_out
        self.macs += tokens * d_in * d_out

    def head(self, d_in: int, num_classes: int) -> None:
        """Add the classifier (a dense layer with bias), also counted apart as the head."""
        self.dense(d_in, num_classes)
        self.head_params = d_in * num_classes + num_classes

    def classifier(self, sizes: list[int]) -> None:
        """Add dense layers from sizes[0] through sizes[-1], the last of them the head."""
        for d_in, d_out in itertools.pairwise(sizes[:-1]):
            self.dense(d_in, d_out)
        self.head(sizes[-2], sizes[-1])

    def attention(self, tokens: int, width: int) -> None:
        """Add the two activation matmuls of self-attention: Q K^T and A V."""
        self.macs += 2 * tokens * tokens * width

    def norm(self, features: int) -> None:
        """Add a normalisation layer's scale and bias (no multiply-adds counted)."""
        self.params += 2 * features

    def add_params(self, count: int) -> None:
        """Add free-standing parameters (tokens, embeddings, layer scales)."""
        self.params += count

    def counts(self) -> Counts:
        """The totals so far."""
        return Counts(params=self.params, head_params=self.head_params, macs=self.macs)
