"""Figures of analyze.py: training curves, reliability diagrams, overlays.

Pure matplotlib (Agg backend) on numpy arrays and dicts; no TensorFlow. Every
figure is written as a PNG atomically (utils/atomic_write.py), so an
interrupted run never leaves a truncated file.
"""
import math
import os

import matplotlib
matplotlib.use('Agg')
from matplotlib import patches  # noqa: E402  (after the backend is chosen)
from matplotlib import pyplot  # noqa: E402
from matplotlib import ticker  # noqa: E402
import numpy as np  # noqa: E402

from utils import atomic_write  # noqa: E402
from utils import get_dataset_colormap  # noqa: E402

# Colour of ignored pixels (label 255) in label maps; no PASCAL class colour
# of a small dataset is white.
IGNORE_COLOR = (255, 255, 255)
# Display names and colours of the calibrated distributions.
SOURCE_TITLES = {'decoder': 'Decoder softmax', 'sgc': 'SGC (attention CAM)',
                 'fused': 'Fused pseudo label',
                 'sharpened': 'Sharpened pseudo label'}
SOURCE_COLORS = {'decoder': 'tab:blue', 'sgc': 'tab:orange',
                 'fused': 'tab:green', 'sharpened': 'tab:red'}
METHOD_COLORS = ('tab:gray', 'tab:purple', 'tab:brown', 'tab:olive')
# Line styles of the runs of one panel (first run solid).
RUN_LINESTYLES = ('-', '--', ':', '-.')


def save_figure(figure, path, dpi=100):
  """Writes `figure` as a PNG to `path` atomically and closes it."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  try:
    with atomic_write.open_atomic(path) as stream:
      figure.savefig(stream, format='png', dpi=dpi, bbox_inches='tight')
  finally:
    pyplot.close(figure)


def _plot_lines(axes, curves, colors=None, **style):
  """Plots {label: (steps [n], values [n])}; returns whether anything was."""
  plotted = False
  for index, (label, (steps, values)) in enumerate(curves.items()):
    if len(steps) == 0:
      continue
    color = (colors or {}).get(label, METHOD_COLORS[index % len(METHOD_COLORS)])
    # Distinct markers keep coinciding curves (e.g. equal mIoU) visible.
    marker = 'osd^'[index % 4] if len(steps) < 30 else None
    axes.plot(steps, values, label=label, color=color, marker=marker,
              markersize=4, markerfacecolor='none', **style)
    plotted = True
  return plotted


def _finish_panel(axes, title, ylabel, plotted, percent=False):
  axes.set_title(title, fontsize=10)
  axes.set_xlabel('training step')
  axes.set_ylabel(ylabel)
  axes.grid(alpha=0.3)
  axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  if percent:
    axes.yaxis.set_major_formatter(ticker.PercentFormatter(xmax=1.0))
  if plotted:
    axes.legend(fontsize=8)
  else:
    axes.text(0.5, 0.5, 'no data', ha='center', va='center',
              transform=axes.transAxes, color='gray')


def plot_curves(path, training_loss, val_miou, pseudo_miou, val_ece,
                train_ece=None):
  """Four panels over training steps, written to `path`.

  Args:
    path: output PNG.
    training_loss: {method: (steps, total loss)} from the event files.
    val_miou: {method: (steps, val mIoU in [0, 1])} per checkpoint.
    pseudo_miou: {run: {source: (steps, mIoU in [0, 1])}}: pseudo-label mIoU
      on val per source (e.g. decoder, sgc, fused) of each PseudoSeg run;
      colour per source, line style per run.
    val_ece: {source: (steps, ECE)} on val, per checkpoint (thick lines).
    train_ece: optional {source: (steps, ECE)} of the training batches from
      the event files (thin lines).
  """
  figure, axes = pyplot.subplots(2, 2, figsize=(12, 8.5))
  (loss_axes, miou_axes), (pseudo_axes, ece_axes) = axes
  plotted = _plot_lines(loss_axes, training_loss, linewidth=1)
  if plotted and all(np.all(v > 0) for _, v in training_loss.values()
                     if len(v)):
    loss_axes.set_yscale('log')
    for axis_formatter in (loss_axes.yaxis.set_major_formatter,
                           loss_axes.yaxis.set_minor_formatter):
      axis_formatter(ticker.FormatStrFormatter('%g'))
  _finish_panel(loss_axes, 'Training loss (total, incl. regularisation)',
                'loss', plotted)
  _finish_panel(miou_axes, 'val mIoU per checkpoint', 'mIoU',
                _plot_lines(miou_axes, val_miou), percent=True)
  plotted = False
  for index, (run, curves) in enumerate(pseudo_miou.items()):
    labels = {source: '%s: %s' % (run, SOURCE_TITLES.get(source, source))
              for source in curves}
    plotted |= _plot_lines(
        pseudo_axes, {labels[s]: curve for s, curve in curves.items()},
        {labels[s]: SOURCE_COLORS.get(s) for s in curves},
        linestyle=RUN_LINESTYLES[index % len(RUN_LINESTYLES)])
  _finish_panel(pseudo_axes, 'Pseudo-label mIoU on val per source',
                'mIoU', plotted, percent=True)
  plotted = _plot_lines(
      ece_axes, {SOURCE_TITLES.get(s, s): c for s, c in val_ece.items()},
      {SOURCE_TITLES.get(s, s): SOURCE_COLORS.get(s) for s in val_ece},
      linewidth=2)
  for source, (steps, values) in (train_ece or {}).items():
    if len(steps):
      ece_axes.plot(steps, values, color=SOURCE_COLORS.get(source, 'black'),
                    linewidth=0.6, alpha=0.5,
                    label='%s (train batches)' % SOURCE_TITLES.get(source,
                                                                   source))
      plotted = True
  _finish_panel(ece_axes, 'PseudoSeg: expected calibration error (val; thin: '
                'training batches)', 'ECE', plotted, percent=True)
  figure.tight_layout()
  save_figure(figure, path)


def plot_reliability(path, statistics, eces, title):
  """Reliability diagrams, one panel per distribution, written to `path`.

  Args:
    path: output PNG.
    statistics: {source: float [3, B]}: per equal-width confidence bin the
      pixel count, the sum of confidence and the sum of correct.
    eces: {source: ECE float or None}.
    title: figure title.
  """
  figure, axes = pyplot.subplots(1, len(statistics),
                                 figsize=(3.6 * len(statistics), 4.2),
                                 squeeze=False)
  for panel, (source, stats) in zip(axes[0], statistics.items()):
    count, confidence, correct = np.asarray(stats, dtype=np.float64)
    num_bins = len(count)
    edges = np.linspace(0., 1., num_bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    filled = count > 0
    with np.errstate(invalid='ignore', divide='ignore'):
      accuracy = np.where(filled, correct / count, 0.)
      mean_confidence = np.where(filled, confidence / count, np.nan)
    share = count / max(count.sum(), 1.)
    panel.bar(centers, share, width=1. / num_bins, color='lightgray',
              edgecolor='none', label='share of pixels')
    panel.bar(centers, accuracy, width=1. / num_bins, fill=False,
              edgecolor=SOURCE_COLORS.get(source, 'tab:blue'), linewidth=1.5,
              label='accuracy')
    panel.plot(mean_confidence[filled], accuracy[filled], 'k.', markersize=4,
               label='(mean conf., acc.)')
    panel.plot([0, 1], [0, 1], '--', color='gray', linewidth=1,
               label='perfect calibration')
    ece = eces.get(source)
    panel.set_title('%s\nECE %s' % (SOURCE_TITLES.get(source, source),
                                    '-' if ece is None else
                                    '%.2f%%' % (100 * ece)), fontsize=10)
    panel.set_xlim(0, 1)
    panel.set_ylim(0, 1)
    panel.set_aspect('equal')
    panel.set_xlabel('confidence')
    panel.set_ylabel('accuracy')
  axes[0][0].legend(fontsize=7, loc='upper left')
  figure.suptitle(title, fontsize=11)
  figure.tight_layout()
  save_figure(figure, path)


def colorize(label, ignore_label=255, colormap_type='pascal'):
  """uint8 [h, w, 3] colours of a label map; ignored pixels IGNORE_COLOR."""
  label = np.asarray(label).astype(np.int64)
  ignored = label == ignore_label
  color = get_dataset_colormap.label_to_color_image(
      np.where(ignored, 0, label), colormap_type)
  color[ignored] = IGNORE_COLOR
  return color


def _legend_handles(num_classes, ignore_label, colormap_type, class_names):
  """Colour patches of the C classes (labelled with their names, else their
  ids) and of the ignore label."""
  colors = get_dataset_colormap.create_label_colormap(colormap_type)
  labels = class_names or [str(c) for c in range(num_classes)]
  handles = [patches.Patch(color=colors[c] / 255., label=labels[c])
             for c in range(num_classes)]
  handles.append(patches.Patch(
      facecolor=np.array(IGNORE_COLOR) / 255., edgecolor='black',
      label='ignore (%d)' % ignore_label))
  return handles


def plot_overlays(path, rows, column_titles, num_classes, ignore_label=255,
                  colormap_type='pascal', class_names=None):
  """A grid of images and label maps, one row per image, written to `path`.

  Args:
    path: output PNG.
    rows: list of (row label str, [image uint8 [h, w, 3], then label maps int
      [h, w] ...]); label maps are coloured with `colorize`.
    column_titles: titles of the columns.
    num_classes: C, for the colour legend.
    ignore_label: label value drawn in IGNORE_COLOR.
    colormap_type: colour map of utils/get_dataset_colormap.py.
    class_names: optional C names for the legend (else the class ids).
  """
  num_columns = len(column_titles)
  handles = _legend_handles(num_classes, ignore_label, colormap_type,
                            class_names)
  legend_columns = min(len(handles), 10)
  # Inches below the grid: one line of legend per legend_columns entries.
  legend_height = 0.35 + 0.25 * math.ceil(len(handles) / legend_columns)
  height = 2.4 * len(rows) + legend_height
  figure, axes = pyplot.subplots(len(rows), num_columns,
                                 figsize=(2.4 * num_columns, height),
                                 squeeze=False)
  for row_axes, (row_label, panels) in zip(axes, rows):
    for column, (panel_axes, panel) in enumerate(zip(row_axes, panels)):
      panel = np.asarray(panel)
      if panel.ndim == 2:
        panel = colorize(panel, ignore_label, colormap_type)
      panel_axes.imshow(panel, interpolation='nearest')
      panel_axes.set_xticks([])
      panel_axes.set_yticks([])
      if column == 0:
        panel_axes.set_ylabel(row_label, fontsize=8)
  for panel_axes, title in zip(axes[0], column_titles):
    panel_axes.set_title(title, fontsize=10)
  figure.legend(handles=handles, loc='lower center', ncol=legend_columns,
                fontsize=7, title='class' if class_names else 'class id',
                title_fontsize=7, frameon=False)
  figure.tight_layout(rect=(0, legend_height / height, 1, 1))
  save_figure(figure, path)
