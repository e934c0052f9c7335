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
    # BEGIN SOLUTION
    num_d = len(real_features)
    total = 0.0
    for real, fake in zip(real_features, fake_features):
        weight = 4.0 / len(real) / num_d
        for r, f in zip(real, fake):
            r = ops.stop_gradient(ops.convert_to_tensor(r, "float32"))
            total = total + weight * ops.mean(ops.abs(ops.convert_to_tensor(f, "float32") - r))
    return ops.cast(total, "float32")
    # END SOLUTION


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
    # BEGIN SOLUTION
    x = ops.convert_to_tensor(x, "float32")
    pad = ((0, 0), (1, 1), (1, 1), (0, 0))
    total = ops.average_pool(ops.pad(x, pad), 3, strides=2, padding="valid")
    count = ops.average_pool(ops.pad(ops.ones_like(x[..., :1]), pad), 3, strides=2, padding="valid")
    return total / count
    # END SOLUTION


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
    # BEGIN SOLUTION
    pyramid = [ops.convert_to_tensor(x, "float32")]
    for _ in range(num_scales - 1):
        pyramid.append(downsample(pyramid[-1]))
    return pyramid
    # END SOLUTION


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
    # BEGIN SOLUTION
    t = ops.cast(ops.convert_to_tensor(instance), "int32")
    dx = ops.cast(ops.not_equal(t[:, :, 1:], t[:, :, :-1]), "float32")
    dy = ops.cast(ops.not_equal(t[:, 1:, :], t[:, :-1, :]), "float32")
    zc, zr = ops.zeros_like(dx[:, :, :1]), ops.zeros_like(dy[:, :1, :])
    edge = ops.maximum(ops.concatenate([zc, dx], 2), ops.concatenate([dx, zc], 2))
    edge = ops.maximum(edge, ops.maximum(ops.concatenate([zr, dy], 1), ops.concatenate([dy, zr], 1)))
    return ops.expand_dims(edge, -1)
    # END SOLUTION


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
    # BEGIN SOLUTION
    features = ops.convert_to_tensor(features, "float32")
    shape = ops.shape(features)
    b = shape[0]
    ids = ops.cast(instance, "int32") + ops.arange(b, dtype="int32")[:, None, None] * max_id
    ids = ops.reshape(ids, (-1,))
    flat = ops.reshape(features, (-1, shape[-1]))
    total = ops.segment_sum(flat, ids, num_segments=b * max_id)
    count = ops.segment_sum(ops.ones_like(flat[:, :1]), ids, num_segments=b * max_id)
    return ops.reshape(ops.take(total / ops.maximum(count, 1.0), ids, axis=0), shape)
    # END SOLUTION


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
