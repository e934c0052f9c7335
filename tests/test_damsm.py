"""DAMSM (AttnGAN): the loss against a literal re-implementation of the reference's loop,
the encoders' parameter counts and padding, and a short pretraining that learns."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from ganlib import losses


# --------------------------------------------------------------------------- #
# An independent numpy DAMSM loss, following the reference's per-caption loop
# (AttnGAN code/miscc/losses.py words_loss / sent_loss, GlobalAttention.func_attention)
# --------------------------------------------------------------------------- #
def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_cross_entropy(logits, target):
    """nn.CrossEntropyLoss: mean over rows of -log softmax(row)[target]."""
    out = []
    for row, k in zip(logits, target):
        finite = row[np.isfinite(row)]
        m = finite.max()
        out.append(-(row[k] - m - np.log(np.exp(finite - m).sum())))
    return float(np.mean(out))


def _np_class_mask(class_ids, b):
    if class_ids is None:
        return np.zeros((b, b), bool)
    mask = np.zeros((b, b), bool)
    for i in range(b):
        row = class_ids == class_ids[i]
        row[i] = False
        mask[i] = row
    return mask


def reference_damsm(regions, image_code, words, sentence, lengths, gamma1, gamma2, gamma3,
                    class_ids=None):
    regions, image_code, words, sentence = (np.asarray(a, np.float64)
                                            for a in (regions, image_code, words, sentence))
    b = regions.shape[0]
    labels = np.arange(b)
    similarities = np.zeros((b, b))        # [image j, caption i]
    for i in range(b):
        word = words[i, :lengths[i]]        # (L, D): the caption cut to its length
        for j in range(b):
            context = regions[j]            # (N, D)
            attn = context @ word.T         # (N, L)
            attn = _np_softmax(attn, axis=1)            # over the words, per region
            attn = _np_softmax(gamma1 * attn.T, axis=1)  # (L, N): over the regions, per word
            weighted = attn @ context       # (L, D)
            cos = np.array([np.dot(w, c) / max(np.linalg.norm(w) * np.linalg.norm(c), 1e-8)
                            for w, c in zip(word, weighted)])
            similarities[j, i] = np.log(np.sum(np.exp(gamma2 * cos)))
    similarities = similarities * gamma3
    mask = _np_class_mask(class_ids, b)
    similarities[mask] = -np.inf
    w_loss = _np_cross_entropy(similarities, labels) + _np_cross_entropy(similarities.T, labels)

    scores = np.zeros((b, b))
    for i in range(b):
        for j in range(b):
            norm = np.linalg.norm(image_code[i]) * np.linalg.norm(sentence[j])
            scores[i, j] = np.dot(image_code[i], sentence[j]) / max(norm, 1e-8) * gamma3
    scores[mask] = -np.inf
    s_loss = _np_cross_entropy(scores, labels) + _np_cross_entropy(scores.T, labels)
    return w_loss, s_loss


def _random_batch(seed=0, b=6, n=9, t=7, d=16, pad_value=0.0):
    rng = np.random.default_rng(seed)
    regions = rng.standard_normal((b, n, d)).astype("float32")
    image_code = rng.standard_normal((b, d)).astype("float32")
    words = rng.standard_normal((b, t, d)).astype("float32")
    sentence = rng.standard_normal((b, d)).astype("float32")
    lengths = rng.integers(1, t + 1, b).astype("int32")
    lengths[0] = t
    lengths[1] = 1
    for k, length in enumerate(lengths):
        words[k, length:] = pad_value
    return regions, image_code, words, sentence, lengths


@pytest.mark.parametrize("class_ids", [None, np.array([3, 1, 3, 0, 1, 2], "int32")])
@pytest.mark.parametrize("gammas", [(4.0, 5.0, 10.0), (1.0, 2.0, 3.0)])
def test_damsm_loss_matches_the_reference_loop(class_ids, gammas):
    # padded positions hold garbage: they must not matter (the reference cuts each caption)
    batch = _random_batch(seed=1, pad_value=7.0)
    expected = reference_damsm(*batch, *gammas, class_ids=class_ids)
    got = losses.damsm_loss(*batch, *gammas, class_ids=class_ids)
    np.testing.assert_allclose([float(got[0]), float(got[1])], expected, rtol=1e-4, atol=1e-4)


def test_damsm_word_scores_and_attention_pieces():
    regions, _, words, _, lengths = _random_batch(seed=2)
    scores = ops.convert_to_numpy(losses.damsm_word_scores(regions, words, lengths, 4.0, 5.0))
    # one pair by hand: image 2, caption 0 (a full-length caption)
    i, j = 2, 0
    s = words[j] @ regions[i].T                               # (T, N), Eq. 7
    s_bar = _np_softmax(s, axis=0)                            # over words, Eq. 8
    alpha = _np_softmax(4.0 * s_bar, axis=1)                  # over regions, Eq. 9
    mask = np.ones((1, words.shape[1]), "float32")
    got_alpha = ops.convert_to_numpy(losses.word_region_attention(words[j:j + 1], regions[i:i + 1], mask))
    np.testing.assert_allclose(got_alpha[0], alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_alpha.sum(-1), 1.0, rtol=1e-5)
    c = alpha @ regions[i]
    np.testing.assert_allclose(ops.convert_to_numpy(losses.region_context(got_alpha, regions[i:i + 1]))[0],
                               c, rtol=1e-4, atol=1e-5)
    cos = np.sum(c * words[j], 1) / (np.linalg.norm(c, axis=1) * np.linalg.norm(words[j], axis=1))
    np.testing.assert_allclose(scores[i, j], np.log(np.sum(np.exp(5.0 * cos))), rtol=1e-4)


def test_matched_codes_give_a_lower_loss_than_shuffled_ones():
    """Known answer: one-hot codes that agree give a near-zero loss; shuffled captions a high one."""
    b, d = 5, 8
    eye = np.eye(d, dtype="float32")[:b]
    regions = np.repeat(eye[:, None, :], 4, axis=1)           # every region of image k is e_k
    words = np.repeat(eye[:, None, :], 3, axis=1)             # every word of caption k is e_k
    lengths = np.full((b,), 3, "int32")
    matched = [float(x) for x in losses.damsm_loss(regions, eye, words, eye, lengths)]
    perm = np.array([1, 2, 3, 4, 0])
    shuffled = [float(x) for x in losses.damsm_loss(regions, eye, words[perm], eye[perm], lengths)]
    # matched: R(Q_i, D_i) = log(3 e^5), R(Q_i, D_j) = log 3, so each direction is
    # log(1 + 4 exp(-gamma3 * gamma2)) and cos = 1 vs 0 for the sentences: log(1 + 4 exp(-10))
    np.testing.assert_allclose(matched[0], 2 * np.log1p(4 * np.exp(-50.0)), atol=1e-6)
    np.testing.assert_allclose(matched[1], 2 * np.log1p(4 * np.exp(-10.0)), atol=2e-6)
    # shuffled: the true pair scores log 3 against one wrong pair at log(3 e^5): ~ 2 * 50 each
    assert shuffled[0] > 90.0 and shuffled[1] > 19.0


def test_damsm_loss_gradients_are_finite_with_zero_padding_and_classes():
    regions, image_code, words, sentence, lengths = _random_batch(seed=3, pad_value=0.0)
    class_ids = np.array([0, 0, 1, 1, 2, 2], "int32")
    variables = [keras.Variable(a) for a in (regions, image_code, words, sentence)]

    def loss_fn(values):
        w, s = losses.damsm_loss(values[0], values[1], values[2], values[3], lengths, class_ids=class_ids)
        return w + s

    grads = _gradients(loss_fn, variables)
    for g in grads:
        g = ops.convert_to_numpy(g)
        assert np.all(np.isfinite(g))
    g_words = ops.convert_to_numpy(grads[2])
    for k, length in enumerate(lengths):          # padded words get no gradient
        assert np.all(g_words[k, length:] == 0.0)
    assert np.abs(g_words[0]).sum() > 0


def _gradients(loss_fn, variables):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn([v.value for v in variables])
        return tape.gradient(loss, [v.value for v in variables])
    if backend == "jax":
        import jax

        return jax.grad(loss_fn)([v.value for v in variables])
    import torch

    leaves = [torch.tensor(ops.convert_to_numpy(v), requires_grad=True) for v in variables]
    loss_fn(leaves).backward()
    return [leaf.grad for leaf in leaves]


# --------------------------------------------------------------------------- #
# Encoders
# --------------------------------------------------------------------------- #
from ganlib.models import damsm  # noqa: E402


def test_text_encoder_has_the_reference_parameter_count():
    """RNN_ENCODER with CUB's 5,450 words: Embedding 5450x300 + bi-LSTM(300 -> 128 x 2).

    Per direction 4*128*(300 + 128) weights + two bias vectors of 4*128 (PyTorch's
    b_ih and b_hh): 220,160; 1,635,000 + 2 * 220,160 = 2,075,320.
    """
    enc = damsm.TextEncoder(5450, embed_dim=256, word_dim=300)
    enc.build((None, 18))
    assert enc.count_params() == 5450 * 300 + 2 * (4 * 128 * (300 + 128) + 2 * 4 * 128) == 2_075_320


def test_text_encoder_sentence_is_the_last_states_of_both_directions_whatever_the_padding():
    keras.utils.set_random_seed(0)
    enc = damsm.TextEncoder(20, embed_dim=16, word_dim=8)
    tokens = np.array([[5, 9, 3, 7, 0, 0, 0], [4, 4, 8, 2, 6, 7, 11]], "int32")
    words, sentence = (ops.convert_to_numpy(a) for a in enc(tokens))
    # forward: the state after the last real word; backward: the state after reading back to word 0
    np.testing.assert_allclose(sentence[0, :8], words[0, 3, :8], atol=1e-6)
    np.testing.assert_allclose(sentence[0, 8:], words[0, 0, 8:], atol=1e-6)
    np.testing.assert_allclose(sentence[1, :8], words[1, 6, :8], atol=1e-6)
    assert np.all(words[0, 4:] == 0.0)
    # the same caption without padding gives the same features (as packed sequences)
    w_short, s_short = (ops.convert_to_numpy(a) for a in enc(tokens[:1, :4]))
    np.testing.assert_allclose(s_short[0], sentence[0], atol=1e-5)
    np.testing.assert_allclose(w_short[0], words[0, :4], atol=1e-5)


def test_lstm_cell_computes_the_pytorch_lstm_equations():
    cell = damsm.LSTMCell(3)
    cell.build((None, 2))
    rng = np.random.default_rng(0)
    x, h, c = rng.standard_normal((1, 2)), rng.standard_normal((1, 3)), rng.standard_normal((1, 3))
    out, (h1, c1) = cell(x.astype("float32"), [h.astype("float32"), c.astype("float32")])
    w, u, bi, bh = (ops.convert_to_numpy(v).astype(np.float64) for v in cell.weights)
    z = x @ w + h @ u + bi + bh
    i, f, g, o = np.split(z, 4, axis=-1)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    c_ref = sig(f) * c + sig(i) * np.tanh(g)
    np.testing.assert_allclose(ops.convert_to_numpy(c1), c_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(h1), sig(o) * np.tanh(c_ref), rtol=1e-5, atol=1e-6)


@pytest.mark.backend_neutral   # what Keras builds is the same on every backend (shapes, dtypes, counts)
def test_inception_image_encoder_regions_and_head_parameters():
    """Mixed_6e gives 17x17 regions at 299; only the two projections train:
    768*256 (1x1 conv, no bias) + 2048*256 + 256 (dense) = 721,152."""
    enc = damsm.ImageEncoder(256, backbone="inception", image_size=64, inception_weights=None)
    regions, code = enc(np.zeros((1, 64, 64, 3), "float32"))
    assert tuple(regions.shape) == (1, 17 * 17, 256) and tuple(code.shape) == (1, 256)
    head = sum(int(np.prod(w.shape)) for w in enc.head_weights)
    trainable = sum(int(np.prod(w.shape)) for w in enc.trainable_weights)
    assert head == trainable == 768 * 256 + 2048 * 256 + 256 == 721_152


def test_small_image_encoder_regions_are_the_projected_grid():
    keras.utils.set_random_seed(0)
    enc = damsm.ImageEncoder(32, backbone="small", image_size=32, small_filters=(8, 16, 24))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    regions, code = (ops.convert_to_numpy(a) for a in enc(x))
    local, pooled = (ops.convert_to_numpy(a) for a in enc.backbone(x))
    assert local.shape == (2, 8, 8, 16)                       # 32 / 2**2 per side
    w = ops.convert_to_numpy(enc.emb_features.kernel)[0, 0]   # (16, 32): v = W f per region
    np.testing.assert_allclose(regions, local.reshape(2, 64, 16) @ w, rtol=1e-4, atol=1e-5)
    wd, bd = (ops.convert_to_numpy(a) for a in enc.emb_cnn_code.weights)
    np.testing.assert_allclose(code, pooled @ wd + bd, rtol=1e-4, atol=1e-5)


def test_config_presets_and_schedule():
    paper, coco, fast = damsm.Config.paper(), damsm.Config.coco(), damsm.Config.fast()
    assert (paper.batch_size, paper.learning_rate, paper.beta_1, paper.rnn_grad_clip) == (48, 0.002, 0.5, 0.25)
    assert (paper.gamma1, paper.gamma2, paper.gamma3, paper.max_words, paper.captions_per_image) == (4, 5, 10, 18, 10)
    assert (coco.max_words, coco.captions_per_image, paper.backbone, fast.backbone) == (15, 5, "inception", "small")
    # x0.98 per epoch while above a tenth: 0.98**114 < 0.1 < 0.98**113, then it stays
    assert paper.learning_rate_at(0) == 0.002
    np.testing.assert_allclose(paper.learning_rate_at(10), 0.002 * 0.98 ** 10)
    np.testing.assert_allclose(paper.learning_rate_at(500), 0.002 * 0.98 ** 114)
    with pytest.raises(ValueError, match="backbone"):
        damsm.Config(backbone="resnet")


def test_text_gradients_are_clipped_to_global_norm_025_and_image_ones_are_not():
    """The reference clips only the RNN encoder's gradients (clip_grad_norm, 0.25)."""
    config = damsm.Config(embed_dim=16, word_dim=8, backbone="small", image_size=16, small_filters=(4, 8),
                          max_words=5, batch_size=4)
    model = damsm.DAMSM(config, vocabulary_size=12)
    model.build()
    model.reference_optimizer()
    text, image = model.text_optimizer, model.image_optimizer
    assert text.global_clipnorm == 0.25 and image.global_clipnorm is None
    assert (text.beta_1, text.beta_2, image.beta_1, image.beta_2) == (0.5, 0.999, 0.5, 0.999)
    assert all(model.select_optimizer(v) is text for v in model.text_encoder.trainable_weights)
    assert all(model.select_optimizer(v) is image for v in model.image_encoder.trainable_weights)
    assert len(model.text_encoder.trainable_weights) == 1 + 2 * 4   # embedding; W, U, b_ih, b_hh per direction


# --------------------------------------------------------------------------- #
# Pretraining learns
# --------------------------------------------------------------------------- #
SMALL = damsm.Config(embed_dim=32, word_dim=32, backbone="small", image_size=32, small_filters=(16, 32, 64),
                     batch_size=16, epochs=2)


def test_damsm_learns_to_match_images_and_captions():
    """16 birds of 16 species (32 px) and one caption each, the reference's optimiser (Adam
    0.002 (0.5, 0.999), RNN clip 0.25) and loss (gammas 4/5/10): 60 steps on this batch take
    image -> caption R-precision among the 16 from chance (1/16) to most of them, in inference
    mode (dropout off, BatchNorm's moving statistics). Measured (TensorFlow): 0.062 -> 1.000,
    loss 3.09 against 11.09 at chance (0.812 and 5.76 after 40 steps)."""
    from ganlib import metrics, pretrain
    from ganlib.text import Tokenizer

    birds = pretrain.render_set(range(0, 160, 10), 1, seed=0, size=32, captions=1)
    tokenizer = Tokenizer.default(18)
    batch = {"image": birds["images"].astype("float32") / 127.5 - 1.0,
             "tokens": tokenizer([c[0] for c in birds["captions"]]), "class_id": birds["species"]}
    keras.utils.set_random_seed(0)
    model = damsm.DAMSM(SMALL, vocabulary_size=tokenizer.vocabulary_size)
    model.build()
    model.compile()

    def score():
        return metrics.r_precision(model.encode_images(batch["image"]), model.encode_captions(batch["tokens"]),
                                   candidates=16)

    before = score()
    data = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(data, steps_per_epoch=60, epochs=1, verbose=0)
    after = score()
    loss = float(ops.convert_to_numpy(sum(model.losses_of(model(batch, training=False), batch["class_id"]))))
    print(f"R-precision among 16: {before:.3f} -> {after:.3f}; loss after {loss:.3f}")
    assert before <= 0.25 and after >= 0.6
    assert loss < 0.6 * 2 * 2 * np.log(16)       # well under chance: log 16 per direction and level


def test_pretraining_resumes_and_saves_a_loadable_folder(tmp_path):
    from ganlib import pretrain
    from ganlib.data import open_dataset, synthbirds

    root = synthbirds.generate(tmp_path / "sb", n=120, size=32, seed=0, verbose=False)
    out = tmp_path / "run"
    pretrain.train_damsm(str(out), root=root, config=SMALL, epochs=1, steps_per_epoch=2, seed=0, verbose=False)
    with pytest.raises(ValueError, match="resume"):
        pretrain.train_damsm(str(out), root=root, config=SMALL, verbose=False)
    history = pretrain.train_damsm(str(out), root=root, config=SMALL, resume=True, steps_per_epoch=2, seed=0,
                                   verbose=False)
    assert [r["epoch"] for r in history] == [1, 2] and [r["step"] for r in history] == [2, 4]
    assert history[-1]["learning_rate"] == pytest.approx(0.002 * 0.98)
    assert all(0.0 <= r["r_precision"] <= 1.0 and r["r_precision_std"] >= 0.0 for r in history)
    model, tokenizer = damsm.load_pretrained(out)
    assert model.config == SMALL and tokenizer.vocabulary == pretrain.damsm_tokenizer(
        open_dataset("synthbirds", root=root), SMALL.max_words).vocabulary
    test = open_dataset("synthbirds", root=root, split="test")
    assert pretrain.damsm_r_precision(model, test, tokenizer, seed=0) == pytest.approx(history[-1]["r_precision"],
                                                                                       abs=0.02)


def test_cli_pretrain_damsm_arguments(tmp_path):
    from ganlib import cli

    args = cli.build_parser().parse_args(["pretrain", "damsm", "--data", "cub", "--root", "r", "--out", "o",
                                          "--epochs", "3", "--resume"])
    assert (args.network, args.data, args.root, args.out, args.epochs, args.resume) == ("damsm", "cub", "r", "o", 3, True)
    assert args.run is cli._pretrain
    # a bad preset name is refused with a message naming the presets
    from ganlib import pretrain

    with pytest.raises(ValueError, match="preset must be one of"):
        pretrain.train_damsm(str(tmp_path / "x"), preset="huge")
