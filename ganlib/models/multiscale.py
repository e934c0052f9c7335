r"""The multi-scale GAN: one generator with an image at every scale, one discriminator per scale.

StackGAN++ (lesson 03) trains this way, and so do AttnGAN, HDGAN and MirrorGAN: G
returns images $s_0, \dots, s_{m-1}$ (smallest first), and discriminator $D_i$ judges
$s_i$ against the real image $x_i$ of the same scale. With a condition $c$, each $D_i$
gives two logits on one image code: a *conditional* one (real and matching $c$?) and
an *unconditional* one (real?); the paper's loss of one scale combines them
(`branch_d_loss`, `branch_g_loss`), and the model's loss is their sum over scales
plus the generator's other terms (`extra_generator_loss`: KL, colour consistency,
DAMSM, ...):

$$L_D = \sum_i L_{D_i},\qquad L_G = \sum_i L_{G_i} + \text{extra terms}.$$

The real image of scale $s$ is the batch's `image_<s>` (the data pipeline's pyramid:
the same crop at every scale, resized as the reference codes do), or an area
downsampling of `image` when the batch has none. A matching-aware $D_i$ also scores
a mismatched pair: the batch's `wrong_image` with the right condition
(`pipeline(wrong="image")`, the StackGAN reference codes), or the real image with
the condition of a mismatched caption.
"""

from keras import ops

from ganlib.models.base import PaperGAN, score_logs, to_numpy_images


def downsample(images, size):
    """Area (box-filter) downsampling of `(B, S, S, C)` images to `size`, S a multiple of size."""
    shape = ops.shape(images)
    factor = int(images.shape[1]) // int(size)
    if factor == 1:
        return images
    x = ops.reshape(images, (shape[0], size, factor, size, factor, shape[-1]))
    return ops.mean(x, axis=(2, 4))


class MultiScaleGAN(PaperGAN):
    """A `PaperGAN` with one image and one discriminator per scale.

    Subclasses set `config.branch_sizes` (smallest first), and implement

    * `generator_outputs(batch, noise, training)` -> dict with `images` (one per scale,
      smallest first), `c` (the condition the discriminators see; absent without one),
      `c_wrong` (the mismatched caption's, when the batch has no `wrong_image`) and
      whatever `extra_generator_loss` needs;
    * `branch_d_loss(real, wrong, fake)` and `branch_g_loss(fake)`, each argument a
      pair `(conditional logit or None, unconditional logit)` of one scale's D
      (`wrong` is None without mismatched pairs);
    * `extra_generator_loss(batch, fakes)` -> `(loss, logs)` (default: none);
    * `generate_scales_from(condition, noise)` -> one numpy image batch per scale.

    Args (besides `PaperGAN`'s): `pyramid_fn`: `(images, size) -> images`, the real image
    of a scale when the batch has no `image_<size>` (default `downsample`, area).
    """

    def __init__(self, config, generator, discriminators, pyramid_fn=None, **kwargs):
        super().__init__(config, generator, discriminators, **kwargs)
        self.pyramid_fn = pyramid_fn or downsample

    @property
    def branch_sizes(self):
        return tuple(self.config.branch_sizes)

    def real_images(self, batch, key="image"):
        """The batch's `key` image at every scale, smallest first (`key_<s>` where the batch has it)."""
        x = ops.convert_to_tensor(batch[key], "float32")
        out = []
        for s in self.branch_sizes:
            if s == x.shape[1]:
                out.append(x)
            elif f"{key}_{s}" in batch:
                out.append(ops.convert_to_tensor(batch[f"{key}_{s}"], "float32"))
            else:
                out.append(self.pyramid_fn(x, s))
        return out

    def d_logits(self, D, image, condition, training=True):
        """`(conditional, unconditional)` logits of one scale's D; conditional is None without a condition."""
        if condition is None:
            return None, D(image, training=training)
        cond, uncond = D([image, condition], training=training)
        return cond, uncond

    def real_and_wrong_logits(self, D, real, condition, wrong, training=True):
        """One scale's logits of the real pair and of the mismatched pair `wrong` (an
        `(image, condition)` pair, or None: then None)."""
        logits = self.d_logits(D, real, condition, training)
        return logits, (self.d_logits(D, *wrong, training) if wrong is not None else None)

    def wrong_pairs(self, batch, fakes, reals):
        """(image, condition) of the mismatched pair at every scale, or None."""
        if "c" not in fakes or self.config.wrong is None:
            return None
        if "wrong_image" in batch:
            return [(x, fakes["c"]) for x in self.real_images(batch, "wrong_image")]
        return [(x, fakes["c_wrong"]) for x in reals]

    def discriminator_loss(self, batch, fakes, training=True):
        c = fakes.get("c")
        reals = self.real_images(batch)
        wrongs = self.wrong_pairs(batch, fakes, reals)
        total, logs = 0.0, {}
        for i, D in enumerate(self.discriminators):
            real, wrong = self.real_and_wrong_logits(D, reals[i], c, wrongs[i] if wrongs else None, training)
            fake = self.d_logits(D, fakes["images"][i], c, training)
            loss = self.branch_d_loss(real, wrong, fake)
            logs[f"d_loss_{self.branch_sizes[i]}"] = loss
            total = total + loss
        head = 0 if c is not None else 1   # the progress bar shows the last scale's conditional logits
        logs.update(score_logs(real[head], (wrong or real)[head], fake[head]))
        return total, logs

    def generator_loss(self, batch, fakes, training=True):
        total = 0.0
        for D, image in zip(self.discriminators, fakes["images"]):
            total = total + self.branch_g_loss(self.d_logits(D, image, fakes.get("c"), training))
        extra, logs = self.extra_generator_loss(batch, fakes)
        return total + extra, logs

    def branch_d_loss(self, real, wrong, fake):
        raise NotImplementedError

    def branch_g_loss(self, fake):
        raise NotImplementedError

    def extra_generator_loss(self, batch, fakes):
        return 0.0, {}

    # ------------------------------------------------------------ inference
    def generate_scales_from(self, condition, noise):
        raise NotImplementedError

    def generate_from(self, condition, noise):
        return self.generate_scales_from(condition, noise)[-1]

    def generate_branches(self, conditions, seed=0, z=None, noise=None):
        """Every scale's images (list, smallest first, numpy in [-1, 1]) for the conditions
        (captions, or a number of images for an unconditional model); noise as `generate`."""
        return self.generate_scales_from(*self.inference_inputs(conditions, seed, z, noise))

    def generate_branches_from_embeddings(self, embeddings, z=None, seed=0, noise=None):
        return self.generate_scales_from(*self.inference_inputs(embeddings, seed, z, noise, encoded=True))

    def run_generator(self, inputs):
        """The inference generator's outputs as numpy images (the first `len(branch_sizes)`)."""
        outs = self.inference_generator()(inputs, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return [to_numpy_images(o) for o in outs[: len(self.branch_sizes)]]
