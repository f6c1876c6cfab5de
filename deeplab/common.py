"""Options and sample keys shared by every module (DeepLab's `common` module).

The flags of the same names are defined in core/flags/common_flags.py, and
entry scripts build a `ModelOptions` from them with core/flags/model_flags.py;
nothing under deeplab/ defines or reads a flag.
"""
import collections


# Defaults of the model options not given positionally, also the defaults of
# the flags of the same names.
MODEL_DEFAULTS = dict(
    merge_method='max',
    add_image_level_feature=True,
    image_pooling_crop_size=None,
    image_pooling_stride=[1, 1],
    aspp_with_batch_norm=True,
    aspp_with_separable_conv=True,
    multi_grid=None,
    decoder_output_stride=None,
    decoder_use_separable_conv=True,
    logits_kernel_size=1,
    model_variant='mobilenet_v2',
    depth_multiplier=1.0,
    divisible_by=None,
    prediction_with_upsampled_logits=True,
    use_bounded_activation=False,
    aspp_with_concat_projection=True,
    aspp_convs_filters=256,
    decoder_filters=256,
    label_weights=None,
    batch_norm_decay=0.9997)


# Keys of the sample dictionaries and the output type.
OUTPUT_TYPE = 'semantic'
IMAGE = 'image'
LABEL = 'label'
LABELS_CLASS = 'labels_class'
HEIGHT = 'height'
WIDTH = 'width'
IMAGE_NAME = 'image_name'
ORIGINAL_IMAGE = 'original_image'
TEST_SET = 'test'
# Keys added by PseudoSeg.
STRONG = 'strong'
VALID = 'valid'
CLS_LABEL = 'cls_label'



class ModelOptions(
    collections.namedtuple('ModelOptions', [
        'outputs_to_num_classes', 'crop_size', 'atrous_rates', 'output_stride',
        'preprocessed_images_dtype'] + list(MODEL_DEFAULTS))):
  """Immutable model options; unspecified fields take `MODEL_DEFAULTS`.

  `outputs_to_num_classes` maps an output type (e.g. 'semantic') to its number
  of classes; `crop_size` is [height, width] or None. Use `_replace` to derive
  variants (e.g. a different crop size). Scripts build them from the flags
  with `core/flags/model_flags.py`.
  """
  __slots__ = ()

  def __new__(cls, outputs_to_num_classes, crop_size=None, atrous_rates=None,
              output_stride=8, preprocessed_images_dtype='float32', **overrides):
    unknown = set(overrides) - set(MODEL_DEFAULTS)
    if unknown:
      raise TypeError('Unknown ModelOptions fields: %s' % sorted(unknown))
    values = dict(MODEL_DEFAULTS, **overrides)
    if values['decoder_output_stride']:
      values['decoder_output_stride'] = sorted(values['decoder_output_stride'],
                                               reverse=True)
    return super(ModelOptions, cls).__new__(
        cls, outputs_to_num_classes=outputs_to_num_classes,
        crop_size=crop_size, atrous_rates=atrous_rates,
        output_stride=output_stride,
        preprocessed_images_dtype=preprocessed_images_dtype, **values)

  def __deepcopy__(self, memo):
    return self._replace()
