r"""Evaluation metrics for text-to-image GANs.

The papers in this course report three kinds of numbers:

* **Inception Score** (Salimans et al., 2016):
  $\mathrm{IS} = \exp\big(\mathbb{E}_x\, D_{KL}(p(y|x)\,\|\,p(y))\big)$, computed on
  `splits` disjoint parts of the sample and reported as mean +- std over the parts,
  as the StackGAN / AttnGAN evaluation code does.
* **Frechet (Inception) Distance** (Heusel et al., 2017) between Gaussians fitted to
  features of real and generated images:
  $\|\mu_1-\mu_2\|^2 + \mathrm{Tr}(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2})$.
* **R-precision** (AttnGAN, Xu et al., 2018): rank each image's true caption among
  `candidates - 1` mismatched ones by cosine similarity of image/text codes
  (DAMSM codes); :func:`r_precision_folds` reports it as mean +- std over 10
  folds, as DM-GAN (Zhu et al., 2019) does; :func:`damsm_r_precision` computes it
  for generated images with a pretrained DAMSM (on SynthBirds the shipped one).

On the synthetic SynthBirds data the "Inception network" is a small classifier
trained on real SynthBirds renders (:class:`Evaluator`, weights shipped in
``ganlib/assets/evaluator.weights.h5``, re-made with
``python -m ganlib.pretrain evaluator``). Because SynthBirds keeps the ground truth
of every attribute, it also gives a direct text-image agreement score,
:func:`caption_consistency`: the fraction of caption-mentioned attributes (part
colours) that the evaluator sees in the image, next to the same fraction expected
by chance.

On real data (CUB, Oxford-102, COCO) the network is Keras' InceptionV3 with
ImageNet weights (:mod:`ganlib.metrics.inception`): :func:`inception_statistics` gives
the FID statistics of the real set (kept as ``.npz`` with :func:`save_statistics`
/ :func:`load_statistics`), :func:`inception_metrics` the FID and Inception Score
(10 splits) of generated images from one forward pass.

* **VS similarity** (HDGAN, Zhang et al., 2018): mean +- std of the cosine of image and
  caption vectors of a pretrained visual-semantic model (:func:`vs_similarity`; on
  SynthBirds the shipped ``ganlib/assets/vs_synthbirds``).
* **BLEU-1..4** (Papineni et al., 2002), corpus level (:func:`corpus_bleu`): of the
  captions MirrorGAN's captioner writes, against the real captions.

Street scenes (pix2pixHD): pixel accuracy and mean IoU of a segmentation network's
prediction on generated images against their input label maps, and an FID analogue
from its features (:mod:`ganlib.metrics.segmentation`).

All functions take and return numpy arrays / Python floats. scipy is not needed.
"""

from ganlib.metrics.bleu import corpus_bleu
from ganlib.metrics.damsm import damsm_codes, damsm_r_precision
from ganlib.metrics.images import as_model_images
from ganlib.metrics.inception import (
    InceptionNetwork, InceptionWeightsUnavailable, default_inception, inception_metrics,
    inception_statistics, load_statistics, save_statistics,
)
from ganlib.metrics.ms_ssim import ms_ssim
from ganlib.metrics.scores import (
    feature_statistics, frechet_distance, inception_score, r_precision, r_precision_folds,
)
from ganlib.metrics.segmentation import (
    label_map_metrics, load_segmenter, segmentation_features, segmentation_scores,
)
from ganlib.metrics.vs import load_vs, vs_similarity
from ganlib.metrics.synthbirds import (
    ASSETS, EVALUATOR_WEIGHTS, Evaluator, build_evaluator_network, caption_consistency,
    default_evaluator, evaluate_images, real_statistics,
)

__all__ = [
    "ASSETS", "EVALUATOR_WEIGHTS", "Evaluator", "InceptionNetwork", "InceptionWeightsUnavailable",
    "as_model_images", "build_evaluator_network", "caption_consistency", "corpus_bleu", "damsm_codes",
    "damsm_r_precision", "default_evaluator",
    "default_inception", "evaluate_images", "feature_statistics", "frechet_distance",
    "inception_metrics", "inception_score", "inception_statistics", "load_statistics", "ms_ssim",
    "r_precision", "r_precision_folds", "real_statistics", "save_statistics",
    "label_map_metrics", "load_segmenter", "segmentation_features", "segmentation_scores",
    "load_vs", "vs_similarity",
]
