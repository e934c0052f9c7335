"""STREAM (MirrorGAN's captioner): the masked caption cross-entropy, teacher forcing and greedy
decoding against numpy, a hand-set decoder, and a short pretraining that learns."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from ganlib.models import stream


def _np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_caption_cross_entropy_is_the_mean_over_real_words():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5)).astype("float32")
    tokens = np.array([[3, 4, 2, 0], [1, 0, 0, 0]])
    mask = stream.caption_mask(tokens)
    np.testing.assert_array_equal(ops.convert_to_numpy(mask), [[1, 1, 1, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(ops.convert_to_numpy(stream.caption_mask(tokens, end_token=True)),
                                  [[1, 1, 1, 1], [1, 1, 0, 0]])
    # nn.CrossEntropyLoss over the packed targets: the 4 real words, averaged
    lp = _np_log_softmax(logits.astype(np.float64))
    want = -(lp[0, 0, 3] + lp[0, 1, 4] + lp[0, 2, 2] + lp[1, 0, 1]) / 4
    got = float(ops.convert_to_numpy(stream.caption_cross_entropy(logits, tokens, mask)))
    assert got == pytest.approx(want, rel=1e-5)
    # padding positions do not count, whatever their logits
    logits2 = logits.copy()
    logits2[0, 3] += 100.0
    logits2[1, 1:] = -logits2[1, 1:]
    assert float(ops.convert_to_numpy(stream.caption_cross_entropy(logits2, tokens, mask))) == pytest.approx(got)


def _np_lstm_step(x, h, c, w, u, bi, bh):
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    i, f, g, o = np.split(x @ w + h @ u + bi + bh, 4, axis=-1)
    c = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c), c


def test_teacher_forcing_and_greedy_decoding_match_numpy():
    keras.utils.set_random_seed(1)
    dec = stream.CaptionRNN(7, embed_size=3, hidden_size=4)
    dec.build(((None, 3), (None, 5)))
    emb, w, u, bi, bh, k, b = (ops.convert_to_numpy(v).astype(np.float64) for v in dec.weights)
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(2, 3)).astype("float32")
    tokens = np.array([[2, 5, 3, 0, 0], [6, 6, 1, 4, 2]])
    # teacher forcing: inputs [x_-1, W_e T_0, ..., W_e T_{L-2}]; output t scores T_t
    logits = ops.convert_to_numpy(dec(feats, tokens))
    for n in range(2):
        h = c = np.zeros(4)
        x = feats[n].astype(np.float64)
        for t in range(5):
            h, c = _np_lstm_step(x, h, c, w, u, bi, bh)
            np.testing.assert_allclose(logits[n, t], h @ k + b, rtol=1e-4, atol=1e-5)
            x = emb[tokens[n, t]]
    # greedy: feed back the argmax
    got = ops.convert_to_numpy(dec.sample(feats, steps=6))
    for n in range(2):
        h = c = np.zeros(4)
        x, words = feats[n].astype(np.float64), []
        for _ in range(6):
            h, c = _np_lstm_step(x, h, c, w, u, bi, bh)
            words.append(int(np.argmax(h @ k + b)))
            x = emb[words[-1]]
        assert got[n].tolist() == words


def test_decode_fn_from_the_weights_matches_the_cell():
    """`greedy_decode_weights` (lesson 06's exercise signature, `decode_fn` of `sample`/`caption`) on the
    decoder's weights writes the same words as the cell's own loop."""
    keras.utils.set_random_seed(2)
    dec = stream.CaptionRNN(9, embed_size=3, hidden_size=5)
    dec.build(((None, 3), (None, 5)))
    feats = np.random.default_rng(2).normal(size=(3, 3)).astype("float32")
    want = ops.convert_to_numpy(dec.sample(feats, steps=7))
    got = ops.convert_to_numpy(dec.sample(feats, steps=7, decode_fn=stream.greedy_decode_weights))
    assert got.dtype == np.int32 and got.tolist() == want.tolist()
    calls = []
    dec.sample(feats, steps=4, decode_fn=lambda f, *w: calls.append([tuple(v.shape) for v in w[:-1]] + [w[-1]]))
    assert calls == [[(9, 3), (3, 20), (5, 20), (20,), (5, 9), (9,), 4]]


def test_greedy_decoding_of_a_hand_set_successor_model():
    """Word k's embedding is 10 e_k; the LSTM copies its input (g gate = x, i and o open, f closed);
    the output layer maps e_k to word k + 1 (mod 4). The image feature 10 e_1 starts the caption,
    so greedy decoding writes 2, 3, then 0 (the end), 1, 2; cut at the end: [2, 3, 0, 0, 0]."""
    dec = stream.CaptionRNN(4, embed_size=4, hidden_size=4)
    dec.build(((None, 4), (None, 5)))
    w = np.zeros((4, 16))
    w[:, 8:12] = np.eye(4)                                         # g = x
    bias = np.concatenate([np.full(4, 10.0), np.full(4, -10.0), np.zeros(4), np.full(4, 10.0)])
    k = np.roll(np.eye(4), 1, axis=1) * 10.0                       # k[j, j + 1] = 10
    dec.set_weights([10 * np.eye(4), w, np.zeros((4, 16)), bias, np.zeros(16), k, np.zeros(4)])
    ids = ops.convert_to_numpy(dec.sample(np.array([[0.0, 10.0, 0.0, 0.0]], "float32"), steps=5))
    assert ids.tolist() == [[2, 3, 0, 1, 2]]
    assert stream.cut_at_end(ids).tolist() == [[2, 3, 0, 0, 0]]


def test_config_presets_and_parameter_counts():
    paper = stream.Config.paper()
    assert (paper.embed_size, paper.hidden_size, paper.sample_length, paper.backbone) == (256, 512, 20, "resnet152")
    assert (paper.batch_size, paper.learning_rate, paper.epochs) == (128, 0.001, 5)
    # CAPTION_RNN(256, 512, V, 1): embedding V*256, LSTM 4*512*(256+512) + 2*4*512, linear 512*V + V
    v = 5450                                         # the CUB vocabulary of the reference (AttnGAN's captions.pickle)
    dec = stream.CaptionRNN(v, 256, 512)
    dec.build(((None, 256), (None, 18)))
    assert dec.count_params() == v * 256 + 4 * 512 * 768 + 2 * 4 * 512 + 512 * v + v
    with pytest.raises(ValueError, match="backbone"):
        stream.Config(backbone="vgg")


def _bleu_on(model, images, captions, tokenizer):
    from ganlib.metrics import corpus_bleu

    hyps = tokenizer.decode(model.caption(images))
    return corpus_bleu([tokenizer.decode(tokenizer(list(c))) for c in captions], hyps)


def test_pretraining_learns_to_caption_and_the_folder_loads(tmp_path):
    """Tiny STREAM on 200 SynthBirds images (150 train / 50 test, 64 px), 2 epochs of 18 steps.

    Measured (TensorFlow): train-split BLEU-1 0.679, BLEU-4 0.322 after 2 epochs; untrained 0.090 and 0.
    """
    from ganlib import pretrain
    from ganlib.data import open_dataset, synthbirds

    root = synthbirds.generate(tmp_path / "sb", n=200, size=64, seed=0, verbose=False)
    config = stream.Config(embed_size=32, hidden_size=64, backbone="small", image_size=64,
                           small_filters=(16, 32, 32, 64), batch_size=8, learning_rate=0.005, epochs=2)
    out = tmp_path / "run"
    history = pretrain.train_stream(str(out), root=root, config=config, seed=0, verbose=False)
    with pytest.raises(ValueError, match="resume"):
        pretrain.train_stream(str(out), root=root, config=config, verbose=False)
    # resuming a finished run reads its state and history and trains no further
    assert pretrain.train_stream(str(out), root=root, config=config, resume=True, verbose=False) == history
    assert [r["epoch"] for r in history] == [1, 2] and history[-1]["step"] == 2 * (150 // 8)
    assert history[-1]["loss"] < history[0]["loss"]
    assert json.loads((out / "metrics.json").read_text()) == history
    model, tokenizer = stream.load_pretrained(out)
    train = open_dataset("synthbirds", root=root, split="train")
    images = train.images(64).astype("float32") / 127.5 - 1.0
    trained = _bleu_on(model, images, train.captions, tokenizer)
    keras.utils.set_random_seed(0)
    untrained = stream.Stream(config, vocabulary_size=tokenizer.vocabulary_size)
    untrained.build()
    before = _bleu_on(untrained, images, train.captions, tokenizer)
    print(f"train BLEU-1..4 untrained {before}, trained {trained}")
    assert trained["bleu4"] > before["bleu4"] + 0.05 and trained["bleu1"] > 0.3
    with pytest.raises(FileNotFoundError, match="stream.weights.h5"):
        stream.load_pretrained(tmp_path / "sb")


def test_cli_pretrain_stream_arguments():
    from ganlib import cli, pretrain

    args = cli.build_parser().parse_args(["pretrain", "stream", "--out", "o", "--backbone-weights", "w.h5"])
    assert (args.network, args.data, args.backbone_weights) == ("stream", "synthbirds", "w.h5")
    with pytest.raises(ValueError, match="preset must be one of"):
        pretrain.train_stream("unused", preset="coco")


def test_reference_stream_weights_give_the_reference_outputs():
    """tests/fixtures/mirrorgan_stream_reference.npz: qiaott/MirrorGAN's CAPTION_CNN head (BatchNorm in
    eval mode with set statistics) and CAPTION_RNN(8, 12, 10 words, 1 layer, 7 sampled words), run in
    PyTorch outside the repository on the pooled features and captions stored with them."""
    from ganlib import convert

    ref = dict(np.load("tests/fixtures/mirrorgan_stream_reference.npz"))
    state = {k[len("state/"):]: v for k, v in ref.items() if k.startswith("state/")}
    config = stream.Config(embed_size=8, hidden_size=12, backbone="small", image_size=8, small_filters=(4, 6),
                           sample_length=7)
    model = stream.Stream(config, vocabulary_size=10)
    model.build()
    cnn = {k[4:]: v for k, v in state.items() if k.startswith("cnn.")}
    rnn = {k[4:]: v for k, v in state.items() if k.startswith("rnn.")}
    convert.load_stream(model, cnn_state={**cnn, "resnet.0.weight": np.zeros((6, 3, 3, 3))}, rnn_state=rnn)
    features = model.encoder.bn(model.encoder.linear(ref["pooled"]), training=False)
    np.testing.assert_allclose(ops.convert_to_numpy(features), ref["features"], atol=1e-4)
    logits = ops.convert_to_numpy(model.decoder(ref["features"], ref["captions"]))
    mask = ops.convert_to_numpy(stream.caption_mask(ref["captions"])).astype(bool)
    np.testing.assert_allclose(logits[mask], ref["logits"][mask], atol=1e-4)
    loss = stream.caption_cross_entropy(logits, ref["captions"], mask)
    assert float(ops.convert_to_numpy(loss)) == pytest.approx(float(ref["loss"]), abs=1e-4)
    np.testing.assert_array_equal(ops.convert_to_numpy(model.decoder.sample(ref["features"], 7)), ref["sampled"])
    with pytest.raises(ValueError, match="unexpected keys"):
        convert.load_stream(model, rnn_state={**rnn, "extra.weight": np.zeros(1)})
    with pytest.raises(ValueError, match="expected shape"):
        convert.load_stream(model, rnn_state={**rnn, "linear.bias": np.zeros(11)})


def test_the_shipped_synthbirds_captioner_describes_unseen_species():
    """ganlib/assets/stream_synthbirds on 50 fresh renders of the 50 test species (one each):
    corpus BLEU-4 well above an untrained captioner's 0 (its full test-split figures are in
    ganlib/assets/pretrained.json)."""
    from ganlib import pretrain
    from ganlib.metrics import corpus_bleu

    model, tokenizer = stream.load_pretrained()
    assert not model.trainable and model.config.backbone == "small"
    data = pretrain.render_set(range(150, 200), 1, seed=123)
    hyps = tokenizer.decode(model.caption(data["images"].astype("float32") / 127.5 - 1.0))
    refs = [tokenizer.decode(tokenizer(caps)) for caps in data["captions"]]
    bleu = corpus_bleu(refs, hyps)
    print(hyps[:3], bleu)
    assert bleu["bleu4"] > 0.2


def _render_test_species(per_species, seed):
    """Fresh renders of the 50 test species (150..199), species-major; float images in [-1, 1]."""
    from ganlib import pretrain

    data = pretrain.render_set(range(150, 200), per_species, seed=seed)
    return data["images"].astype("float32") / 127.5 - 1.0, data["captions"]


def test_the_shipped_captioner_reads_the_image():
    """MirrorGAN's STREAM loss (teacher-forced, real words only) of the shipped captioner on 100 fresh
    renders of the 50 test species is clearly lower with each image's own caption than with the caption
    of a bird of the next species: the loss carries the image's content, which is what makes it a
    training signal for the generator. Measured (TensorFlow): 1.224 own, 1.491 another species'
    (the captioner of before, a CNN trained from scratch, scored the same with shuffled images)."""
    from ganlib.models import damsm

    model, tokenizer = stream.load_pretrained()
    # its CNN is the shipped DAMSM's image CNN, frozen (Config.fast)
    assert model.config.backbone_weights == "damsm" and not model.encoder.backbone.trainable
    want = damsm.load_pretrained()[0].image_encoder.backbone.get_weights()
    for got, w in zip(model.encoder.backbone.get_weights(), want, strict=True):
        np.testing.assert_array_equal(got, w)
    with pytest.raises(ValueError, match="filters"):
        stream.CaptionCNN(8, "small", 64, "damsm", small_filters=(32, 64, 128, 256))
    images, captions = _render_test_species(2, seed=321)
    tokens = np.asarray(tokenizer([caps[0] for caps in captions]))
    own = float(ops.convert_to_numpy(model.caption_loss(images, tokens)))
    other = float(ops.convert_to_numpy(model.caption_loss(images, np.roll(tokens, 2, axis=0))))
    print(f"STREAM loss: own captions {own:.4f}, another species' captions {other:.4f}")
    assert other > own + 0.1, (own, other)


class _Captioned:
    """A stand-in MirrorGAN for `evaluate_model`: a text model with the shipped STREAM as its helper
    'stream', whose `generate` returns given images in order."""

    class condition:
        kind = "words"

        @staticmethod
        def of_sample(sample):
            return sample["captions"]

    def __init__(self, images, captioner, tokenizer):
        self.images, self.auxiliaries, self.tokenizer = images, [captioner], tokenizer
        self.config = type("C", (), {"image_size": 64})()

    def generate(self, captions, seed=0):
        return self.images[seed:seed + len(captions)]


def test_evaluation_records_bleu4_of_stream_captions_of_the_generated_images():
    """`evaluate_model`'s `bleu4` (DESIGN.md's key) for a model with a STREAM helper is corpus BLEU-4
    of the captioner's greedy captions of the generated images against the captions they came from."""
    from ganlib import evaluation
    from ganlib.metrics import corpus_bleu

    captioner, tokenizer = stream.load_pretrained()
    images, captions = _render_test_species(1, seed=77)
    uint8 = np.round((images + 1.0) * 127.5).astype(np.uint8)
    dataset = type("D", (list,), {"name": "synthbirds"})(
        {"image": im, "captions": caps, "class_id": 150 + i} for i, (im, caps) in enumerate(zip(uint8, captions)))
    sample = evaluation.real_sample(dataset, 50, 64, seed=0)
    fakes = sample["images"].astype("float32") / 127.5 - 1.0
    record = evaluation.evaluate_model(_Captioned(fakes, captioner, tokenizer), dataset, n=50, seed=0)
    hyps = tokenizer.decode(captioner.caption(fakes))
    want = corpus_bleu([[c] for c in tokenizer.decode(tokenizer(sample["captions"]))], hyps)["bleu4"]
    print(f"bleu4 of 50 real images as 'generated' ones, one reference each: {want:.3f}")
    assert record["bleu4"] == pytest.approx(want, abs=1e-12) and want > 0.05   # measured 0.103 (TF)
