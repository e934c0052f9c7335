"""MirrorGAN's sentence-level attention (GLAM) against an independent numpy computation."""

import keras
import numpy as np

from ganlib.layers import SentenceAttention, sentence_attention


def _np_reference(h, s, v_kernel, v_bias, u_kernel):
    """GLAttentionGeneral's sentence branch in numpy, channels-first as the reference writes it."""
    x = h.transpose(0, 3, 1, 2)                          # (B, C, H, W)
    e = s @ v_kernel + v_bias                            # nn.Linear(100, idf)
    e = np.broadcast_to(e[:, :, None, None], x.shape)    # .view(B, idf, 1, 1).repeat(1, 1, ih, iw)
    vs = np.einsum("oc,bchw->bohw", u_kernel.T, x * e)  # conv1x1 (out, in) weight
    a = np.exp(vs - vs.max(axis=1, keepdims=True))
    a = a / a.sum(axis=1, keepdims=True)                 # nn.Softmax() on 4-D: dim 1
    return (e * a).transpose(0, 2, 3, 1), a.transpose(0, 2, 3, 1)


def test_sentence_attention_matches_numpy():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(2, 3, 4, 6)).astype("float32")
    s = rng.normal(size=(2, 5)).astype("float32")
    layer = SentenceAttention()
    att, a = layer([h, s])
    v_kernel, v_bias = (keras.ops.convert_to_numpy(w) for w in layer.linear.weights)
    u = keras.ops.convert_to_numpy(layer.kernel)
    want_att, want_a = _np_reference(h, s, v_kernel, v_bias, u)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a), want_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(att), want_att, rtol=1e-5, atol=1e-6)
    # a known answer: U = 0 gives a uniform softmax, Att^s = e / C at every pixel
    e = rng.normal(size=(2, 6)).astype("float32")
    out, a0 = sentence_attention(keras.ops.convert_to_tensor(h), e, np.zeros((6, 6), "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a0), np.full(h.shape, 1 / 6), rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out)[:, 1, 2], e / 6, rtol=1e-5)


def test_sentence_attention_serialises_and_takes_a_function():
    h = keras.Input((4, 4, 8))
    c = keras.Input((5,))
    model = keras.Model([h, c], SentenceAttention(name="att_s")([h, c]))
    clone = keras.models.model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    x = [np.ones((1, 4, 4, 8), "float32"), np.linspace(-1, 1, 5, dtype="float32")[None]]
    for got, want in zip(clone(x), model(x)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want), rtol=1e-6)
    layer = SentenceAttention(fn=lambda h, e, k: (h * 0.0, h * 0.0 + 1.0))
    _, a = layer(x)
    assert float(keras.ops.convert_to_numpy(a).min()) == 1.0
