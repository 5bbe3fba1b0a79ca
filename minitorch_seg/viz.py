"""Pictures for the lessons and for predictions: the computation graph, and segmentations in colour.

- ``draw_graph(tensor)``: the graph autograd recorded behind ``tensor``, one box per Function
  (its name and output shape) and one rounded box per leaf tensor (shape, dtype, requires_grad),
  arrows in the forward direction, inputs at the top and ``tensor`` at the bottom. DeZero's
  ``plot_dot_graph`` draws the same picture through Graphviz; this one lays the graph out itself
  and draws with matplotlib only, so it needs no system package.
- ``show_segmentation(image, label, prediction)``: image, ground truth and prediction side by
  side, labels in the Cityscapes palette (ignored pixels black), a legend of the classes present.
- ``training_curves(history, model_name)``: a run's training and validation loss and its
  validation mIoU per epoch, the best epoch marked (``curves.png`` in a run folder).

These return a ``matplotlib.figure.Figure`` made without pyplot (no global figure state, no
``plt.show()``): a notebook displays the returned figure, a script calls ``fig.savefig(path)``.
Two more return plain uint8 RGB pictures, drawn with Pillow pixel for pixel (no resampling, so
every label pixel keeps its exact palette colour):

- ``segmentation_mosaic(rows)``: a row per sample, image | ground truth | prediction (the
  ``samples/`` pictures a training run writes after every epoch).
- ``palette_legend()``: each class's colour beside its name (``legend.png`` of ``predict``).

>>> import minitorch_seg as mt
>>> x = mt.randn(2, 3, requires_grad=True)
>>> fig = draw_graph((x * x).sum())
>>> sorted(t.get_text().splitlines()[0] for t in fig.axes[0].texts)
['Mul', 'Sum', 'tensor']
"""
from __future__ import annotations

import math

import numpy
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Patch
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont

from . import backend
from .autograd import Context
from .data.labels import CLASS_NAMES, IGNORE_INDEX, train_ids_to_colors
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .tensor import Tensor

__all__ = ["draw_graph", "graph_layers", "palette_legend", "segmentation_mosaic", "show_segmentation",
           "training_curves"]

FUNCTION_COLOUR = "#cfe2f3"   # light blue boxes for Functions, as DeZero
LEAF_COLOUR = "#fce5cd"       # light orange for the leaves


# ---- the computation graph --------------------------------------------------------------------
def _shape_text(shape):
    return "scalar" if tuple(shape) == () else str(tuple(int(n) for n in shape))


def _walk(root):
    """Every node behind ``root`` and the forward edges between them, found without recursion.

    Nodes are graph Contexts (Functions) and leaf Tensors, keyed by ``id``; returns
    (nodes: key -> object in discovery order, edges: [(producer key, consumer key), ...] deduplicated).
    """
    nodes, edges, seen_edges = {id(root): root}, [], set()
    stack = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, Context):
            continue
        for edge in node.edges:
            if edge is None:           # an input that wanted no gradient is not recorded
                continue
            producer = edge[0]
            if id(producer) not in nodes:
                nodes[id(producer)] = producer
                stack.append(producer)
            if (id(producer), id(node)) not in seen_edges:
                seen_edges.add((id(producer), id(node)))
                edges.append((id(producer), id(node)))
    return nodes, edges


def graph_layers(tensor):
    """The nodes behind ``tensor`` in layers: layer d holds the nodes whose longest path to the output is d.

    Returns (layers: [[node, ...], ...] with ``tensor``'s own node alone in layer 0, each layer
    ordered left to right; edges: [(producer, consumer), ...] in the forward direction).
    """
    root = tensor.grad_fn if tensor.grad_fn is not None else tensor
    nodes, edges = _walk(root)
    producers = {key: [] for key in nodes}
    consumers = {key: [] for key in nodes}
    for producer, consumer in edges:
        producers[consumer].append(producer)
        consumers[producer].append(consumer)
    # Longest path from the output: visit a node once all its consumers are done (Kahn's algorithm
    # on the backward direction), pushing each producer's depth to one more than its consumer's.
    depth = {key: 0 for key in nodes}
    waiting = {key: len(consumers[key]) for key in nodes}
    ready = [id(root)]
    while ready:
        key = ready.pop()
        for producer in producers[key]:
            depth[producer] = max(depth[producer], depth[key] + 1)
            waiting[producer] -= 1
            if waiting[producer] == 0:
                ready.append(producer)
    layers = [[] for _ in range(max(depth.values()) + 1)]
    for key in nodes:                 # discovery order: the tie-break below is deterministic
        layers[depth[key]].append(key)
    # Left to right: each node under the mean position of the nodes it feeds (already placed).
    position = {id(root): 0.0}
    for layer in layers[1:]:
        order = {key: i for i, key in enumerate(layer)}
        layer.sort(key=lambda k: (sum(position[c] for c in consumers[k]) / len(consumers[k]), order[k]))
        for i, key in enumerate(layer):
            position[key] = i - (len(layer) - 1) / 2
    return ([[nodes[key] for key in layer] for layer in layers],
            [(nodes[p], nodes[c]) for p, c in edges])


def _node_label(node, names):
    if isinstance(node, Context):
        lines = [node.name]
        for index, (shape, _, _) in enumerate(node.outputs):
            name = names.get((id(node), index))
            lines.append("→ " + _shape_text(shape) + (f" {name}" if name else ""))
        return "\n".join(lines)
    title = names.get(id(node)) or type(node).__name__.lower()
    return f"{title}\n{_shape_text(node.shape)} {node.dtype}\nrequires_grad={node.requires_grad}"


def draw_graph(tensor, ax=None, names=None):
    """Draw the computation graph behind ``tensor``; returns the matplotlib Figure.

    Each Function applied on the way to ``tensor`` is a square box with its name and output
    shape(s); each leaf tensor (the inputs and weights that want a gradient) a rounded box with
    its shape, dtype and ``requires_grad``. Arrows point the way the forward pass went, from the
    inputs at the top to ``tensor`` at the bottom; a node's row is the length of its longest path
    to the output. Inputs that want no gradient (constants, targets) are not recorded in the
    graph and so are not drawn.

    ``names``: optional {name: tensor} (e.g. ``{"x": x, "loss": loss}`` or
    ``dict(model.named_parameters())``) to label leaves and outputs. ``ax``: draw into this Axes
    instead of a new Figure. The graph survives ``backward()`` (only saved arrays are freed), so
    it can be drawn before or after.
    """
    labels = {}
    for name, t in (names or {}).items():
        labels[id(t) if t.grad_fn is None else (id(t.grad_fn), t._output_index)] = name
    layers, edges = graph_layers(tensor)
    widest = max(len(layer) for layer in layers)
    if ax is None:
        fig = Figure(figsize=(min(2.4 * widest + 1, 40), min(1.25 * len(layers) + 0.5, 60)))
        ax = fig.add_subplot()
    fig = ax.figure
    texts = {}
    for depth, layer in enumerate(layers):
        for i, node in enumerate(layer):
            x, y = 2.4 * (i - (len(layer) - 1) / 2), 1.25 * depth
            function = isinstance(node, Context)
            box = dict(boxstyle="square,pad=0.4" if function else "round,pad=0.4",
                       facecolor=FUNCTION_COLOUR if function else LEAF_COLOUR, edgecolor="0.35")
            texts[id(node)] = ax.text(x, y, _node_label(node, labels), ha="center", va="center",
                                      fontsize=8, bbox=box, zorder=3)   # drawn before the arrows,
    # which are clipped at the boxes' outlines: those are placed when the texts are drawn
    for producer, consumer in edges:
        start, end = texts[id(producer)], texts[id(consumer)]
        ax.add_patch(FancyArrowPatch(start.get_position(), end.get_position(), arrowstyle="-|>",
                                     mutation_scale=12, color="0.3", shrinkA=1, shrinkB=1, zorder=4,
                                     patchA=start.get_bbox_patch(), patchB=end.get_bbox_patch()))
    ax.set_xlim(-1.2 * widest - 0.6, 1.2 * widest + 0.6)
    ax.set_ylim(-0.6, 1.25 * len(layers) - 0.6)      # the output at the bottom, inputs (deepest) above
    ax.axis("off")
    return fig


# ---- segmentations in the Cityscapes palette ------------------------------------------------------
def _host(x):
    return backend.to_numpy(x.data if isinstance(x, Tensor) else x)


def _image_rgb(image):
    """uint8 (H, W, 3) from a uint8 HxWx3 image or a normalised float (3, H, W) (or (1, 3, H, W))."""
    image = _host(image)
    while image.ndim > 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or 3 not in (image.shape[0], image.shape[-1]):
        raise ValueError(f"show_segmentation: image must be (H, W, 3) or (3, H, W), got shape {image.shape}.")
    if image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)                                    # (3, H, W) -> (H, W, 3)
    if image.dtype == numpy.uint8:
        return image
    if image.dtype.kind != "f":
        raise TypeError(f"show_segmentation: image must be uint8 or a normalised float array, got {image.dtype}.")
    rgb = image * numpy.asarray(IMAGENET_STD) + numpy.asarray(IMAGENET_MEAN)   # undo (x/255 - mean)/std
    return (numpy.clip(rgb, 0, 1) * 255 + 0.5).astype(numpy.uint8)


def _train_ids(label, name):
    """(H, W) integer train ids from ids (H, W) / (1, H, W), or from logits (C, H, W) / (1, C, H, W) by argmax."""
    label = _host(label)
    if label.dtype.kind == "f":
        while label.ndim > 3 and label.shape[0] == 1:
            label = label[0]
        if label.ndim != 3:
            raise ValueError(f"show_segmentation: float {name} must be logits (C, H, W), got shape {label.shape}.")
        label = label.argmax(axis=0)
    while label.ndim > 2 and label.shape[0] == 1:
        label = label[0]
    if label.ndim != 2 or label.dtype.kind not in "iu":
        raise ValueError(f"show_segmentation: {name} must be (H, W) integer train ids, "
                         f"got {label.dtype} {label.shape}.")
    return label.astype(numpy.int64)


def show_segmentation(image, label, prediction=None, class_names=CLASS_NAMES, ax=None):
    """Image, ground truth and (optionally) prediction side by side; returns the matplotlib Figure.

    ``image``: uint8 (H, W, 3), or the float (3, H, W) a model takes (normalised with the
    ImageNet mean and std, which are undone here); None to leave it out. ``label``,
    ``prediction``: (H, W) train ids (0..18; 255, the ignore index, is drawn black), as arrays or
    Tensors of any backend; a float (C, H, W) prediction is read as logits (argmax over C).
    The legend lists only the classes that appear in the label or the prediction (by
    ``class_names[train_id]``), plus "ignore (255)" if ignored pixels appear.
    ``ax``: a sequence of Axes, one per panel, to draw into instead of a new Figure.
    """
    panels = []
    if image is not None:
        panels.append(("image", _image_rgb(image)))
    ids = [_train_ids(label, "label")]
    if prediction is not None:
        ids.append(_train_ids(prediction, "prediction"))
    for title, labels in zip(("ground truth", "prediction"), ids):
        panels.append((title, train_ids_to_colors(labels)))
    shapes = {p.shape[:2] for _, p in panels}
    if len(shapes) > 1:
        raise ValueError(f"show_segmentation: image, label and prediction differ in size: {sorted(shapes)}.")
    if ax is None:
        height, width = panels[0][1].shape[:2]
        fig = Figure(figsize=(3.2 * len(panels) * max(width / height, 0.5) + 1.8, 3.4), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        place = dict(loc="outside right center")
    else:
        axes = list(ax) if not hasattr(ax, "imshow") else [ax]
        if len(axes) != len(panels):
            raise ValueError(f"show_segmentation: {len(panels)} panels to draw but {len(axes)} Axes given.")
        fig = axes[0].figure
        place = dict(loc="center left", bbox_to_anchor=(1.0, 0.5))
    for a, (title, rgb) in zip(axes, panels):
        a.imshow(rgb, interpolation="nearest")
        a.set_title(title)
        a.axis("off")
    present = numpy.unique(numpy.concatenate([i.ravel() for i in ids]))
    handles = [Patch(facecolor=train_ids_to_colors(numpy.array([c])).reshape(3) / 255, edgecolor="0.5",
                     label=class_names[c] if 0 <= c < len(class_names) else f"class {c}")
               for c in present if c != IGNORE_INDEX]
    if IGNORE_INDEX in present:
        handles.append(Patch(facecolor="black", edgecolor="0.5", label=f"ignore ({IGNORE_INDEX})"))
    fig.legend(handles=handles, frameon=False, fontsize=8, **place)
    return fig


# ---- a training run's pictures ----------------------------------------------------------------------
# The margins ``tight_layout`` chose for this figure, fixed (loss ticks of up to six characters
# fit): it drew the whole figure once more to measure its labels. Writing curves.png after each
# epoch took 143 ms with it and 91 without (a 2-core EPYC, medians of 20 taking turns).
CURVES_MARGINS = {"left": 0.085, "right": 0.985, "bottom": 0.17, "top": 0.8, "wspace": 0.21}


def training_curves(history, model_name):
    """Loss (training and validation) and validation mIoU per epoch; the best epoch marked on both.

    ``history``: the rows of a run's ``metrics.csv`` as dicts (``epoch``, ``train_loss``,
    ``val_miou`` and, from runs that record it, ``val_loss``). The best epoch is the first with
    the highest validation mIoU, the one ``best.npz`` holds: a dashed line on both plots and a
    star on the mIoU curve; the title names the model and that epoch.
    """
    epochs = [row["epoch"] for row in history]
    mious = [row["val_miou"] for row in history]
    best = max(range(len(history)), key=lambda i: (mious[i], -i))            # the first of equal bests
    best_epoch, best_miou = epochs[best], mious[best]
    figure = Figure(figsize=(9, 3.4))
    loss_ax, miou_ax = figure.subplots(1, 2)
    loss_ax.plot(epochs, [row["train_loss"] for row in history], marker="o", label="training")
    validated = [(row["epoch"], row["val_loss"]) for row in history if row.get("val_loss") is not None]
    if validated:
        loss_ax.plot(*zip(*validated), marker="s", color="tab:orange", label="validation")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    miou_ax.plot(epochs, mious, marker="o", color="tab:green", label="validation mIoU")
    miou_ax.plot([best_epoch], [best_miou], marker="*", markersize=15, color="tab:red", linestyle="none",
                 label=f"best: {best_miou:.3f} at epoch {best_epoch}")
    miou_ax.set(xlabel="epoch", ylabel="validation mIoU", title="mIoU",
                ylim=(0, max(0.1, math.ceil(max(mious) * 10) / 10)))
    for ax in (loss_ax, miou_ax):
        ax.axvline(best_epoch, color="0.6", linestyle="--", linewidth=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    figure.suptitle(f"{model_name}: best validation mIoU {best_miou:.3f} at epoch {best_epoch}")
    figure.subplots_adjust(**CURVES_MARGINS)
    return figure


def _font(size):
    try:
        return ImageFont.load_default(size=size)   # Pillow >= 10.1 with FreeType: a scalable font
    except TypeError:
        return ImageFont.load_default()


def segmentation_mosaic(rows, titles=("image", "ground truth", "prediction"), gap=2):
    """One uint8 (H, W, 3) picture: a row per sample, its panels side by side under ``titles``.

    ``rows``: [(image uint8 (H, W, 3), label (H, W) train ids, prediction (H, W) train ids), ...]
    (any number of label panels per row, as many as ``titles`` has after the image). Labels are
    drawn in the Cityscapes palette (255, ignored, black); panels are separated by ``gap`` white
    pixels, and rows of other sizes are padded with white to the largest.
    """
    panels = [[_image_rgb(row[0])] + [train_ids_to_colors(_train_ids(ids, "label")) for ids in row[1:]]
              for row in rows]
    height = max(p.shape[0] for row in panels for p in row)
    widths = [max(row[c].shape[1] for row in panels) for c in range(len(panels[0]))]
    font = _font(11)
    header = 16
    canvas = numpy.full((header + len(panels) * (height + gap), sum(widths) + gap * (len(widths) - 1), 3),
                        255, numpy.uint8)
    for r, row in enumerate(panels):
        top, left = header + r * (height + gap), 0
        for c, panel in enumerate(row):
            canvas[top:top + panel.shape[0], left:left + panel.shape[1]] = panel
            left += widths[c] + gap
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    left = 0
    for title, width in zip(titles, widths):
        draw.text((left + 2, 2), title, fill=(0, 0, 0), font=font)
        left += width + gap
    return numpy.asarray(picture)


def palette_legend(class_names=CLASS_NAMES):
    """One uint8 (H, W, 3) picture: each train id's colour swatch beside its name, and "ignore" in black."""
    entries = [(train_ids_to_colors(numpy.array([c])).reshape(3), f"{c:>2} {name}")
               for c, name in enumerate(class_names)]
    entries.append((train_ids_to_colors(numpy.array([IGNORE_INDEX])).reshape(3), f"{IGNORE_INDEX} ignore"))
    line, swatch, font = 20, 16, _font(12)
    picture = Image.new("RGB", (170, line * len(entries) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    for i, (colour, text) in enumerate(entries):
        top = 2 + i * line
        draw.rectangle([4, top, 4 + swatch - 1, top + swatch - 1], fill=tuple(int(v) for v in colour),
                       outline=(128, 128, 128))
        draw.text((4 + swatch + 6, top + 1), text, fill=(0, 0, 0), font=font)
    return numpy.asarray(picture)
