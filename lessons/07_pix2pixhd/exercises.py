# Generated from solutions/07_pix2pixhd/exercises.py by `python -m ganlib.course.stubs`: edit the solution, not this file.
r"""Lesson 07 exercises: pix2pixHD (feature matching, the multi-scale discriminators' image
pyramid, the instance boundary map, instance-wise average pooling).

Fill in every function below. Compute with `keras.ops` only (not numpy, `tf.`, `torch.` or
`jax.`), so that your code runs on the TensorFlow, JAX and PyTorch backends and can drive the
notebook's training: the model calls your boundary map on every batch's instance map, your
pyramid before every discriminator, your pooling on the feature encoder's output and your
feature-matching loss in the generator's loss. `image_pyramid` calls your `downsample`:
write them in order. Exercise 6 is a question, not code: answer it in `REFLECTION` at the end
of this file (the instructor grades it; `ganlib grade` gives it no score).

Paper:
    [HD] Wang et al. 2018, "High-Resolution Image Synthesis and Semantic Manipulation with
         Conditional GANs" (CVPR); reference code NVIDIA/pix2pixHD.

Check your work:

    ganlib grade 07                                  # score table
    GANLIB_SUBMISSION=lessons/07_pix2pixhd/exercises.py pytest tests/grading/test_07_pix2pixhd.py
"""

from keras import ops


def feature_matching(real_features, fake_features):
    r"""Exercise 1. The discriminator feature-matching loss ([HD], section "Improved adversarial loss").

    For each discriminator $D_k$ ($k = 1 \dots num\_D$) and each of its $L$ intermediate
    feature maps $D_k^{(i)}$ (the final prediction is not one of them):

    $$\mathcal{L}_{FM} = \sum_{k} \sum_{i=1}^{L} \frac{4}{L}\,\frac{1}{num\_D}\;
      \mathrm{mean}\,\big|D_k^{(i)}(s, x) - D_k^{(i)}(s, G(s))\big|$$

    The paper's $1/N_i$ ($N_i$ elements in the map) makes each term a mean; the
    weights $4/L$ and $1/num\_D$ are the reference code's. The real features are
    targets: hold them constant with `ops.stop_gradient`.

    Args:
        real_features: a list (one per scale) of lists of L float tensors (the maps of
            D_k on the real pair), e.g. shapes (B, H_i, W_i, C_i).
        fake_features: the same structure for the generated pair.

    Returns:
        A float32 scalar tensor.

    Hint: two loops; `len(real_features)` is num_D and `len(real_features[k])` is L.
    """
    raise NotImplementedError("Exercise: feature_matching")


def downsample(x):
    r"""Exercise 2. The pyramid's downsampling step: a 3x3 average pool of stride 2 with padding 1 that
    does *not* count the padding (PyTorch's `AvgPool2d(3, 2, 1, count_include_pad=False)`).

    Output pixel (i, j) is the mean of the input pixels (r, c) with
    $r \in \{2i-1, 2i, 2i+1\}$, $c \in \{2j-1, 2j, 2j+1\}$ that lie inside the image (9 in
    the interior, 6 on an edge, 4 in a corner).

    Args:
        x: float tensor (B, H, W, C), H and W even.

    Returns:
        float32 tensor (B, H/2, W/2, C).

    Hint: pad with zeros (`ops.pad`), sum-pool by `ops.average_pool(..., 3, strides=2,
    padding="valid")`, and divide by the same pooling of a padded map of ones (how many
    real pixels each window holds).
    """
    raise NotImplementedError("Exercise: downsample")


def image_pyramid(x, num_scales):
    r"""Exercise 3. The multi-scale discriminators' inputs ([HD], section "Multi-scale discriminators"):
    $D_1$ judges the (label map, image) pair at full resolution, $D_2$ at half, $D_3$ at a
    quarter, ...

    Args:
        x: float tensor (B, H, W, C), the concatenated pair.
        num_scales: num_D.

    Returns:
        A list of num_scales float32 tensors: x, downsample(x), downsample(downsample(x)), ...
    """
    raise NotImplementedError("Exercise: image_pyramid")


def instance_edges(instance):
    r"""Exercise 4. The instance boundary map ([HD], section "Using instance maps").

    A label map cannot tell two adjacent cars apart; the instance map can, but its ids are
    arbitrary numbers. The boundary map keeps what matters: pixel (i, j) is 1 if one of its
    4 neighbours (up, down, left, right; inside the image) has another instance id, else 0.
    Both pixels of a differing pair are marked.

    Args:
        instance: int tensor (B, H, W) of instance ids.

    Returns:
        float32 tensor (B, H, W, 1) of 0 and 1.

    Hint: compare shifted slices, `t[:, :, 1:] != t[:, :, :-1]` (`ops.not_equal`), pad the
    result back to W columns on the left and on the right (`ops.concatenate` with zeros)
    and combine with `ops.maximum`; the same along H.
    """
    raise NotImplementedError("Exercise: instance_edges")


def instance_average_pool(features, instance, max_id=34000):
    r"""Exercise 5. Instance-wise average pooling ([HD], section "Learning an instance-level feature
    embedding"): the encoder's feature map is replaced, at every pixel, by the mean of the
    features over that pixel's instance (same id, same image), so that each object gets one
    feature vector.

    Args:
        features: float tensor (B, H, W, C).
        instance: int tensor (B, H, W) of ids in [0, max_id).
        max_id: an upper bound of the ids (Cityscapes: label_id * 1000 + k < 34000).

    Returns:
        float32 tensor (B, H, W, C).

    Hint: give every (image, instance) pair its own segment, `b * max_id + id`; flatten
    pixels to (B*H*W, C); `ops.segment_sum(values, segment_ids, num_segments=B * max_id)`
    of the features and of ones gives sums and counts; divide (counts of unused segments
    are 0: use `ops.maximum(count, 1)`), and `ops.take(means, segment_ids, axis=0)` puts
    each pixel's mean back.
    """
    raise NotImplementedError("Exercise: instance_average_pool")


# Exercise 6 (reflection; 3 points, graded by the instructor: `ganlib grade` gives it no score).
# The README's comparison "with vs without the instance boundary map" trains the same model twice
# from the same start and seed, once without the boundary channel (`--variant no-instance`), and
# scores the segmentation accuracy on car pixels next to another car. In 4 to 8 sentences: what can
# the generator not know about two adjacent cars from the one-hot label map alone, what does the
# boundary channel add, and why does pix2pixHD feed boundaries rather than the instance ids
# themselves? Which other measurement (not accuracy) would show the same effect, and why?
REFLECTION = """
(Write your answer here.)
"""
