"""viz: the computation-graph drawing and the segmentation panels the lessons show."""
import numpy
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import viz
from minitorch_seg.data.labels import CLASS_NAMES, TRAIN_ID_PALETTE
from minitorch_seg.data.transforms import normalize_chw

pytestmark = pytest.mark.lessons


def node_texts(fig):
    return [t.get_text() for t in fig.axes[0].texts]


def arrows(fig):
    return [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]


# ---- draw_graph ---------------------------------------------------------------------------------
def test_graph_of_a_small_expression_has_one_box_per_function_and_leaf():
    x = mt.randn(4, 3, requires_grad=True)
    w = mt.randn(4, 3, requires_grad=True)
    b = mt.randn(3, requires_grad=True)
    loss = (x * w + b).relu().sum()
    fig = viz.draw_graph(loss)
    assert isinstance(fig, Figure)
    texts = node_texts(fig)
    assert len(texts) == 7                                   # x, w, b; Mul, Add, ReLU, Sum
    assert sorted(t.splitlines()[0] for t in texts) == ["Add", "Mul", "ReLU", "Sum", "tensor", "tensor", "tensor"]
    assert "Mul\n→ (4, 3)" in texts and "Sum\n→ scalar" in texts
    assert texts.count("tensor\n(4, 3) float32\nrequires_grad=True") == 2
    assert "tensor\n(3,) float32\nrequires_grad=True" in texts
    assert len(arrows(fig)) == 6                             # x, w -> Mul; Mul, b -> Add; -> ReLU; -> Sum


def test_graph_names_label_leaves_and_outputs_and_constants_are_not_drawn():
    x = mt.randn(2, 2, requires_grad=True)
    loss = (x * 3.0).mean()                                  # 3.0 wants no gradient: not in the graph
    texts = node_texts(viz.draw_graph(loss, names={"x": x, "loss": loss}))
    assert sorted(texts) == ["Mean\n→ scalar loss", "Mul\n→ (2, 2)", "x\n(2, 2) float32\nrequires_grad=True"]


def test_fan_out_is_one_node_with_one_arrow_per_consumer():
    x = mt.randn(3, requires_grad=True)
    y = x * x + x                                            # x feeds Mul twice and Add once
    fig = viz.draw_graph(y)
    assert len(node_texts(fig)) == 3
    assert len(arrows(fig)) == 3                             # x -> Mul (once), x -> Add, Mul -> Add


def test_layers_are_longest_paths_from_the_output():
    x = mt.randn(3, requires_grad=True)
    y = x.exp()
    out = y.log() + y                                        # y reaches Add directly and through Log
    layers, edges = viz.graph_layers(out)
    names = [[n.name if hasattr(n, "name") else "leaf" for n in layer] for layer in layers]
    assert names == [["Add"], ["Log"], ["Exp"], ["leaf"]]    # Exp sits below Log, not beside it
    assert len(edges) == 4


def test_graph_walk_is_iterative_and_survives_backward():
    x = mt.randn(2, requires_grad=True)
    y = x
    for _ in range(3000):                                    # deeper than Python's recursion limit
        y = y + 1.0
    layers, _ = viz.graph_layers(y)
    assert len(layers) == 3001
    z = (x * x).sum()
    z.backward()                                             # frees saved arrays, keeps the edges
    assert len(node_texts(viz.draw_graph(z))) == 3


def test_multi_output_function_lists_every_output_shape():
    x = mt.randn(1, 1, 4, 4, requires_grad=True)
    y, switches = F.max_pool2d(x, 2, return_indices=True)
    texts = node_texts(viz.draw_graph(y.sum()))
    assert "MaxPool2d\n→ (1, 1, 2, 2)\n→ (1, 1, 2, 2)" in texts


def test_a_leaf_alone_and_drawing_into_given_axes():
    x = mt.randn(5, requires_grad=True)
    assert node_texts(viz.draw_graph(x)) == ["tensor\n(5,) float32\nrequires_grad=True"]
    fig = Figure()
    ax = fig.add_subplot()
    assert viz.draw_graph((x * x).sum(), ax=ax) is fig
    assert len(ax.texts) == 3


def test_parameters_are_labelled_by_their_names():
    layer = mt.nn.Linear(3, 2)
    loss = layer(mt.randn(4, 3)).sum()
    texts = node_texts(viz.draw_graph(loss, names=dict(layer.named_parameters())))
    assert "weight\n(2, 3) float32\nrequires_grad=True" in texts
    assert "bias\n(2,) float32\nrequires_grad=True" in texts


# ---- show_segmentation ------------------------------------------------------------------------------
def panels(fig):
    return {a.get_title(): a.images[0].get_array() for a in fig.axes if a.images}


def legend_labels(fig):
    (legend,) = fig.legends
    return [t.get_text() for t in legend.get_texts()]


def known_scene():
    label = numpy.full((6, 8), 0, numpy.int64)               # road
    label[:2] = 10                                           # sky on top
    label[3:5, 2:5] = 13                                     # a car
    label[:, -1] = 255                                       # an ignored column
    image = numpy.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=numpy.uint8)
    return image, label


def test_labels_are_drawn_in_the_cityscapes_palette_and_ignore_in_black():
    image, label = known_scene()
    fig = viz.show_segmentation(image, label)
    drawn = panels(fig)
    assert list(drawn) == ["image", "ground truth"]
    numpy.testing.assert_array_equal(drawn["image"], image)
    truth = numpy.asarray(drawn["ground truth"])
    numpy.testing.assert_array_equal(truth[5, 0], TRAIN_ID_PALETTE[0])      # road (128, 64, 128)
    numpy.testing.assert_array_equal(truth[0, 0], TRAIN_ID_PALETTE[10])     # sky
    numpy.testing.assert_array_equal(truth[3, 2], TRAIN_ID_PALETTE[13])     # car (0, 0, 142)
    numpy.testing.assert_array_equal(truth[:, -1], numpy.zeros((6, 3)))     # ignored: black
    numpy.testing.assert_array_equal(truth[:, :-1], TRAIN_ID_PALETTE[label[:, :-1]])


def test_legend_lists_exactly_the_classes_present():
    image, label = known_scene()
    assert legend_labels(viz.show_segmentation(image, label)) == ["road", "sky", "car", "ignore (255)"]
    prediction = numpy.where(label == 13, 11, label)         # a person where the car is
    prediction[prediction == 255] = 0
    fig = viz.show_segmentation(image, label, prediction)
    assert legend_labels(fig) == ["road", "sky", "person", "car", "ignore (255)"]
    numpy.testing.assert_array_equal(panels(fig)["prediction"][3, 2], TRAIN_ID_PALETTE[11])
    only_road = numpy.zeros((6, 8), numpy.int64)
    assert legend_labels(viz.show_segmentation(None, only_road)) == ["road"]
    names = tuple(f"c{i}" for i in range(19))
    assert legend_labels(viz.show_segmentation(None, only_road, class_names=names)) == ["c0"]
    assert CLASS_NAMES[0] == "road"


def test_normalised_float_images_tensors_and_logits_are_accepted():
    image, label = known_scene()
    chw = normalize_chw(image)                               # what a model takes: float32 (3, H, W)
    logits = numpy.zeros((19, 6, 8), numpy.float32)
    logits[2] = 1.0                                          # "building" everywhere
    fig = viz.show_segmentation(mt.tensor(chw[None]), mt.tensor(label[None]), mt.tensor(logits))
    drawn = panels(fig)
    assert numpy.abs(drawn["image"].astype(int) - image).max() <= 1        # de-normalised back
    assert (numpy.asarray(drawn["prediction"]) == TRAIN_ID_PALETTE[2]).all()
    assert legend_labels(fig) == ["road", "building", "sky", "car", "ignore (255)"]


def test_drawing_into_given_axes_and_clear_errors():
    image, label = known_scene()
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert viz.show_segmentation(image, label, ax=axes) is fig
    with pytest.raises(ValueError, match="differ in size"):
        viz.show_segmentation(image, label[:5])
    with pytest.raises(ValueError, match="2 panels to draw but 3 Axes"):
        viz.show_segmentation(image, label, ax=Figure().subplots(1, 3))
    with pytest.raises(ValueError, match="train ids"):
        viz.show_segmentation(image, numpy.zeros((2, 6, 8), numpy.int64))
