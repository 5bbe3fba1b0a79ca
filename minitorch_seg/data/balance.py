"""Class weights for the loss, from how many pixels of each class the training labels hold.

A street scene is mostly road, building and vegetation: with every pixel weighted alike, the
loss barely notices poles, signs and people, and a short training run never learns them, which
is what mIoU (an average over classes) punishes. ENet (Paszke et al., 2016) weights class k by

    w_k = 1 / ln(c + p_k),    p_k = the share of class k among the labelled pixels, c = 1.02,

so rare classes weigh up to 1/ln(1.02) ~ 50 and the commonest a few; ``cross_entropy(...,
weight=w)`` then averages sum_i w_{t_i} l_i / sum_i w_{t_i}, as torch does. For p_k small against
c, ln(c + p_k) ~ ln c + p_k / c, so w_k ~ c / (c ln c + p_k): inverse frequency (~1/p_k) above a
knee at c ln c ~ 2% of the pixels, the cap 1/ln c below it (the U-Net lesson derives this and
measures the weights against the plain loss). Ignored pixels (255) count for nothing; a class
with no pixels at all gets weight 0 (it is never a target anyway).

>>> import numpy
>>> enet_weights(numpy.array([98, 2, 0])).round(2).tolist()   # 98% and 2% of the pixels
[1.44, 25.5, 0.0]
"""
import numpy

ENET_C = 1.02


def pixel_counts(dataset, num_classes):
    """Pixels of each class (num_classes,) over ``dataset.target(i)`` for every i; 255 and others skipped."""
    counts = numpy.zeros(num_classes, numpy.int64)
    for index in range(len(dataset)):
        target = dataset.target(index).ravel()
        counts += numpy.bincount(target[target < num_classes], minlength=num_classes)
    return counts


def enet_weights(counts, c=ENET_C):
    """ENet's class weights 1 / ln(c + p_k) from pixel counts (num_classes,); 0 for a class with no pixels."""
    counts = numpy.asarray(counts, numpy.float64)
    if counts.sum() <= 0:
        raise ValueError("enet_weights: the labels hold no pixel of any class, so there is nothing to weight.")
    shares = counts / counts.sum()
    return numpy.where(counts > 0, 1.0 / numpy.log(c + shares), 0.0)
