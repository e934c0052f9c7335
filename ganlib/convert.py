"""Load the reference implementations' PyTorch checkpoints into ganlib's networks.

**pix2pixHD**, NVIDIA/pix2pixHD: `load_pix2pixhd` (below) reads `latest_net_G.pth`, `latest_net_D.pth`
and `latest_net_E.pth` into `ganlib.models.pix2pixhd` networks built from the matching `Config`.

**StackGAN++ (StackGAN-v2)**, hanzhanggit/StackGAN-v2 (`code/model.py`, `code/trainer.py`):
its trainer saves `netG_<iteration>.pth` (G_NET, the moving average of G's weights, saved
through `DataParallel`, so every key starts with `module.`) and `netD0.pth`, `netD1.pth`,
`netD2.pth` (D_NET64, D_NET128, D_NET256). `load_stackganv2` assigns them to the networks of
`ganlib.models.stackganpp` built from the matching `Config`:

* `cfg/birds_3stages.yml` and `cfg/eval_birds.yml` (the published bird model,
  `netG_210000.pth`): `Config.paper().replace(embed_dim=1024)`, the 1024-d char-CNN-RNN
  sentence embeddings the reference was trained on;
* the unconditional `cfg/*_3stages_color.yml` (bedroom, cat, church, dog):
  `Config.paper(unconditional=True)`.

Any other width (`GF_DIM` = `ngf`, `DF_DIM` = `ndf`, `Z_DIM`, `EMBEDDING_DIM` = `ca_dim`,
`TEXT.DIMENSION` = `embed_dim`, `R_NUM` = `num_residual`, `BRANCH_NUM` = `branches` with
`image_size = 64 * 2**(branches - 1)`) converts the same way.

Conversion: convolution kernels (O, I, kh, kw) -> (kh, kw, I, O); linear weights (out, in) ->
(in, out); BatchNorm weight, bias, running_mean, running_var -> gamma, beta, moving_mean,
moving_variance (`num_batches_tracked` is read and dropped; older checkpoints lack it). Two
layout differences are undone: the reference views F_0's output as (C, 4, 4) where ganlib
reshapes it channels-last to (4, 4, C), so F_0's linear outputs and BatchNorm are permuted; and
the reference concatenates the replicated condition before the feature map where
`ganlib.layers.ReplicateConcat` puts it after, so the joining convolutions' input channels are
rotated. The discriminators' logits are the reference's outputs before its sigmoid.

**MirrorGAN**, qiaott/MirrorGAN: `load_mirrorgan` assigns G_NET (AttnGAN's with GLAM's
sentence attention and joining convolution) and the D_NETs (AttnGAN's) to `ganlib.models.mirrorgan`.

**MirrorGAN's STREAM**, qiaott/MirrorGAN (`model.py`: `CAPTION_CNN`, `CAPTION_RNN`; checkpoints
`cnn_encoder.ckpt` / `rnn_decoder.ckpt` of the captioning tutorial it was trained with):
`load_stream` assigns them to a `ganlib.models.stream.Stream`. The decoder converts fully
(`nn.LSTM`'s `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, gates i, f, g, o, ->
`LSTMCell`'s kernel, recurrent kernel and two biases); of the encoder only the projection and its
BatchNorm: torchvision's ResNet-152 (`resnet.*` keys, read and dropped) is not Keras' (strides on
the 3x3 rather than the 1x1 convolutions, no convolution biases), so the backbone keeps the Keras
weights it was built with (`Config.backbone_weights`).

Every reference key must be used exactly once and every ganlib weight set; otherwise nothing is
assigned and a ValueError names the keys (and the expected and given shapes).
"""

import os

import numpy as np

_DATA_PARALLEL = "module."
_BN_FIELDS = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
              ("running_var", "moving_variance"))
# kind -> (reference array -> ganlib array, ganlib shape -> the reference shape it comes from)
_KINDS = {
    "conv": (lambda w: np.transpose(w, (2, 3, 1, 0)), lambda s: (s[3], s[2], s[0], s[1])),
    "dense": (lambda w: np.transpose(w), lambda s: (s[1], s[0])),
    "vector": (lambda w: w, tuple),
}


# --------------------------------------------------------------------------- reading checkpoints
def read_state_dict(source, name="state"):
    """A reference state dict as `{key: numpy array}`, the `module.` prefix of `DataParallel` removed.

    Args:
        source: a mapping key -> array (numpy or torch tensors), or the path of a `.pth` / `.pt`
            file (read with PyTorch, which must then be installed) or of a `.npz` file.
        name: what to call `source` in error messages (e.g. the argument's name).
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{name}: no file {path!r}")
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as f:
                source = {k: f[k] for k in f.files}
        elif path.endswith((".pth", ".pt")):
            source = _torch_load(path, name)
        else:
            raise ValueError(f"{name}: {path!r} must be a .pth/.pt (PyTorch) or .npz file")
    if not hasattr(source, "items"):
        raise TypeError(f"{name}: expected a mapping key -> array or a file path, got {type(source).__name__}")
    state = {}
    for key, value in source.items():
        key = key[len(_DATA_PARALLEL):] if key.startswith(_DATA_PARALLEL) else key
        if hasattr(value, "detach"):   # a torch tensor
            value = value.detach().cpu().numpy()
        state[key] = np.asarray(value)
    return state


def _torch_load(path, name):
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"{name}: reading {path!r} needs PyTorch (pip install torch), or convert the "
                          "checkpoint to .npz first: np.savez(out, **{k: v.numpy() for k, v in "
                          "torch.load(path).items()})") from e
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not hasattr(state, "items"):
        raise ValueError(f"{name}: {path!r} holds a {type(state).__name__}, not a state_dict")
    return state


# --------------------------------------------------------------------------- StackGAN-v2 key maps
# An entry (reference key, ganlib variable or None, kind, fix): `fix` (or None) rearranges the
# converted array; a None variable marks a key that is read and dropped (num_batches_tracked).
def _bn(key, layer, fix=None):
    entries = [(f"{key}.{ref}", getattr(layer, ours), "vector", fix) for ref, ours in _BN_FIELDS]
    return entries + [(f"{key}.num_batches_tracked", None, None, None)]


def _conv(key, layer, fix=None):
    entries = [(f"{key}.weight", layer.kernel, "conv", fix)]
    if layer.bias is not None:
        entries.append((f"{key}.bias", layer.bias, "vector", None))
    return entries


def _condition_first(condition_width):
    """Input channels of a joining convolution: the reference's [c, h] -> ganlib's [h, c]."""
    def fix(kernel):
        return np.concatenate([kernel[:, :, condition_width:], kernel[:, :, :condition_width]], axis=2)
    return fix


def _channels_last(units):
    """F_0's 2 * 16 * C outputs: per GLU half, the reference's (C, 4, 4) order -> ganlib's (4, 4, C)."""
    half = units // 2
    idx = np.arange(half).reshape(half // 16, 16).T.reshape(-1)
    perm = np.concatenate([idx, idx + half])
    return lambda w: w[..., perm]


def _names(network):
    return {layer.name: layer for layer in network.layers}


def stackganv2_generator_entries(generator):
    """The (reference key, variable, kind, fix) entries of G_NET for a `stackganpp` generator."""
    layers = _names(generator)
    entries = []
    if "F_ca" in layers:
        fc = layers["F_ca"].fc
        entries += [("ca_net.fc.weight", fc.kernel, "dense", None), ("ca_net.fc.bias", fc.bias, "vector", None)]
        condition_width = layers["F_ca"].units
    else:
        condition_width = generator.inputs[0].shape[-1]   # the reference feeds z as the condition

    def joint(i, key):
        return (_conv(f"{key}.jointConv.0", layers[f"F{i}_joint_conv"], _condition_first(condition_width))
                + _bn(f"{key}.jointConv.1", layers[f"F{i}_joint_bn"]))
    return entries + _tree_entries(layers, joint)


def _tree_entries(layers, join):
    """F_0, each later stage (`join(i, key)`: its joining entries, then residual blocks and
    upsampling) and the image convolutions of a G_NET tree (StackGAN-v2's and AttnGAN's)."""
    ups = sum(name.startswith("F0_up") and name.endswith("_conv") for name in layers)
    if ups != 4:
        raise ValueError(f"generator: the reference G_NET's first branch is 64 px (4 upsamplings in F_0); "
                         f"this one has {ups}: build it with image_size = 64 * 2**(branches - 1)")
    f0 = _channels_last(layers["F0_fc"].units)
    entries = [("h_net1.fc.0.weight", layers["F0_fc"].kernel, "dense", f0)] + _bn("h_net1.fc.1", layers["F0_fc_bn"], f0)
    for k in range(ups):
        entries += _conv(f"h_net1.upsample{k + 1}.1", layers[f"F0_up{k}_conv"])
        entries += _bn(f"h_net1.upsample{k + 1}.2", layers[f"F0_up{k}_bn"])
    i = 0
    while f"G{i}_conv" in layers:
        entries += _conv(f"img_net{i + 1}.img.0", layers[f"G{i}_conv"])
        if i > 0:
            h = f"h_net{i + 1}"
            entries += join(i, h)
            r = 0
            while f"F{i}_res{r}_a_conv" in layers:
                res = f"{h}.residual.{r}.block"
                entries += _conv(f"{res}.0", layers[f"F{i}_res{r}_a_conv"]) + _bn(f"{res}.1", layers[f"F{i}_res{r}_a_bn"])
                entries += _conv(f"{res}.3", layers[f"F{i}_res{r}_b_conv"]) + _bn(f"{res}.4", layers[f"F{i}_res{r}_b_bn"])
                r += 1
            entries += _conv(f"{h}.upsample.1", layers[f"F{i}_up_conv"]) + _bn(f"{h}.upsample.2", layers[f"F{i}_up_bn"])
        i += 1
    return entries


def stackganv2_discriminator_entries(discriminator):
    """The entries of D_NET64/128/256 (and 512/1024) for a `stackganpp` discriminator."""
    layers = _names(discriminator)
    entries = _image_code_entries(layers, discriminator.name, discriminator.inputs[0].shape[1])
    if "cond_conv" in layers:
        condition_width = discriminator.inputs[1].shape[-1]
        entries += _conv("jointConv.0", layers["joint_conv"], _condition_first(condition_width))
        entries += _bn("jointConv.1", layers["joint_bn"])
        entries += _conv("logits.0", layers["cond_conv"]) + _conv("uncond_logits.0", layers["uncond_conv"])
    else:   # unconditional: the reference's only head is `logits`, on the image code
        entries += _conv("logits.0", layers["uncond_conv"])
    return entries


def _image_code_entries(layers, name, size):
    """The image code's entries (img_code_s16, img_code_s32..., their 3x3 blocks), StackGAN-v2's and AttnGAN's."""
    downs = sum(name.startswith("down") and name[4:].isdigit() for name in layers)
    if downs < 4:
        raise ValueError(f"discriminator {name}: the reference has no discriminator for "
                         f"{size} px (D_NET64 is its smallest)")
    entries = _conv("img_code_s16.0", layers["down0"])
    for k in (1, 2, 3):   # img_code_s16: conv, leaky | conv, BN, leaky (x3)
        entries += _conv(f"img_code_s16.{3 * k - 1}", layers[f"down{k}"]) + _bn(f"img_code_s16.{3 * k}", layers[f"down{k}_bn"])
    for k in range(4, downs):
        key = f"img_code_s{16 * 2 ** (k - 3)}"
        entries += _conv(f"{key}.0", layers[f"down{k}"]) + _bn(f"{key}.1", layers[f"down{k}_bn"])
    j = 0
    while f"reduce{j}" in layers:
        key = f"img_code_s{16 * 2 ** (downs - 4)}_{j + 1}"
        entries += _conv(f"{key}.0", layers[f"reduce{j}"]) + _bn(f"{key}.1", layers[f"reduce{j}_bn"])
        j += 1
    return entries


# --------------------------------------------------------------------------- assigning
def _convert(entries, state, network, name):
    """Check `state` against `entries` and return [(variable, array)]; raise ValueError on any mismatch."""
    keys = [key for key, *_ in entries]
    assert len(set(keys)) == len(keys), "a reference key mapped twice"
    optional = {key for key, variable, *_ in entries if variable is None}
    missing = [k for k in keys if k not in state and k not in optional]
    unused = [k for k in state if k not in set(keys)]
    if missing or unused:
        raise ValueError(f"{name}: the state dict does not match {network.name}: "
                         f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''} "
                         f"({len(missing)}), unexpected keys {unused[:8]}{' ...' if len(unused) > 8 else ''} "
                         f"({len(unused)}). Is the Config the checkpoint's (see ganlib.convert)?")
    pairs, errors = [], []
    for key, variable, kind, fix in entries:
        if variable is None:
            continue
        to_ours, their_shape = _KINDS[kind]
        value, expected = state[key], their_shape(tuple(variable.shape))
        if value.shape != expected:
            errors.append(f"{key}: expected shape {expected} (for {network.name}'s {variable.path} "
                          f"{tuple(variable.shape)}), got {value.shape}")
            continue
        value = to_ours(value)
        pairs.append((variable, (fix(value) if fix else value).astype(variable.dtype)))
    if errors:
        raise ValueError(f"{name}: " + "; ".join(errors))
    assigned = {id(v) for v, _ in pairs}
    unset = [w.path for w in network.weights if id(w) not in assigned]
    if unset:
        raise ValueError(f"{name}: no reference key for {network.name}'s weights {unset}")
    return pairs


def load_stackganv2(target, generator_state=None, discriminator_states=None):
    """Assign hanzhanggit/StackGAN-v2 weights to a StackGAN++ model's networks.

    Args:
        target: a `ganlib.models.stackganpp.StackGANpp` (its `generator` and `discriminators`;
            an EMA copy of G is set to the loaded weights too), or a tuple
            `(generator, discriminators)` of networks from its `build_generator` /
            `build_discriminators` (either may be None).
        generator_state: G_NET's state dict (`netG_<iteration>.pth`): a path (.pth or .npz) or a
            mapping key -> array; None leaves G as it is.
        discriminator_states: one state dict per discriminator, smallest first (`netD0.pth`,
            `netD1.pth`, `netD2.pth`), each a path, a mapping or None (left as it is).

    Returns:
        `target`.

    Raises:
        ValueError: a key missing or left over, or a shape that does not fit (nothing is
            assigned then); see the module docstring for the configs that match.
    """
    if isinstance(target, tuple):
        generator, discriminators = target
    else:
        generator, discriminators = target.generator, target.discriminators
    jobs = []
    if generator_state is not None:
        if generator is None:
            raise ValueError("generator_state given but target has no generator")
        state = read_state_dict(generator_state, "generator_state")
        jobs.append((generator, _convert(stackganv2_generator_entries(generator), state, generator, "generator_state")))
    if discriminator_states is not None:
        discriminators = list(discriminators or [])
        if len(discriminator_states) != len(discriminators):
            raise ValueError(f"discriminator_states: one per discriminator (smallest first) expected, "
                             f"{len(discriminators)}; got {len(discriminator_states)}")
        for i, (d, source) in enumerate(zip(discriminators, discriminator_states)):
            if source is not None:
                name = f"discriminator_states[{i}]"
                state = read_state_dict(source, name)
                jobs.append((d, _convert(stackganv2_discriminator_entries(d), state, d, name)))
    for _, pairs in jobs:   # assign only once every state dict has been checked
        for variable, value in pairs:
            variable.assign(value)
    if generator_state is not None and getattr(target, "generator_ema", None) is not None:
        target.sync_ema()
    return target


# --------------------------------------------------------------------------- AttnGAN
# taoxugit/AttnGAN (`code/model.py`, `code/trainer.py`, `code/pretrain_DAMSM.py`): `netG_epoch_<k>.pth`
# (G_NET, the averaged weights), `netD0.pth` .. `netD2.pth` (D_NET64/128/256), the DAMSM's
# `text_encoder<k>.pth` (RNN_ENCODER) and `image_encoder<k>.pth` (CNN_ENCODER: InceptionV3 and two
# projections), and the dataset's `captions.pickle` (its vocabulary). Layouts as StackGAN-v2's above;
# the AttnGAN networks concatenate the feature map before its word contexts / condition, as ganlib
# does, so only F_0's channels-last reshape is undone.
_KINDS["pointwise"] = (lambda w: np.transpose(w[:, :, 0, 0]), lambda s: (s[1], s[0], 1, 1))
_KINDS["embedding"] = (lambda w: w, tuple)


def _nested_names(network):
    """Layers by name, those of nested models (AttnGAN's discriminator parts) included."""
    names = {}
    for layer in network.layers:
        names[layer.name] = layer
        if hasattr(layer, "layers"):
            names.update(_nested_names(layer))
    return names


def attngan_generator_entries(generator):
    """The (reference key, variable, kind, fix) entries of AttnGAN's G_NET for an `attngan` generator."""
    layers = _nested_names(generator)
    fc = layers["F_ca"].fc
    entries = [("ca_net.fc.weight", fc.kernel, "dense", None), ("ca_net.fc.bias", fc.bias, "vector", None)]
    return entries + _tree_entries(layers, lambda i, key: [(f"{key}.att.conv_context.weight", layers[f"F{i}_attn"].U,
                                                             "pointwise", None)])


def attngan_discriminator_entries(discriminator):
    """The entries of AttnGAN's D_NET64/128/256 for an `attngan` discriminator."""
    layers = _nested_names(discriminator)
    entries = _image_code_entries(layers, discriminator.name, discriminator.inputs[0].shape[1])
    entries += _conv("COND_DNET.jointConv.0", layers["joint_conv"]) + _bn("COND_DNET.jointConv.1", layers["joint_bn"])
    return entries + _conv("COND_DNET.outlogits.0", layers["cond_conv"]) + _conv("UNCOND_DNET.outlogits.0",
                                                                                  layers["uncond_conv"])


# nn.LSTM's keys (one layer; gates i, f, g, o as ganlib's LSTMCell) -> the cell's weights
_LSTM_FIELDS = (("weight_ih_l0", "kernel", "dense"), ("weight_hh_l0", "recurrent_kernel", "dense"),
                ("bias_ih_l0", "input_bias", "vector"), ("bias_hh_l0", "recurrent_bias", "vector"))


def damsm_text_encoder_entries(text_encoder):
    """RNN_ENCODER's entries (embedding, both LSTM directions; PyTorch's gate order is ganlib's)."""
    entries = [("encoder.weight", text_encoder.embedding.embeddings, "embedding", None)]
    for suffix, layer in (("", text_encoder.rnn.forward_layer), ("_reverse", text_encoder.rnn.backward_layer)):
        entries += [(f"rnn.{ref}{suffix}", getattr(layer.cell, ours), kind, None) for ref, ours, kind in _LSTM_FIELDS]
    return entries


def attngan_vocabulary(captions_pickle):
    """The words of AttnGAN's `captions.pickle` (`[train, test, ixtoword, wordtoix]`), in id order from
    id 1 (id 0 is the reference's padding/end): `ganlib.text.Tokenizer(words)` gives word id k the
    ganlib id k + 1, and `load_damsm_text_encoder` shifts the embedding rows to match."""
    import pickle

    with open(captions_pickle, "rb") as f:
        data = pickle.load(f, encoding="latin1")
    if not (isinstance(data, (list, tuple)) and len(data) == 4 and isinstance(data[2], dict)):
        raise ValueError(f"{captions_pickle}: expected AttnGAN's [train_captions, test_captions, ixtoword, wordtoix]")
    ixtoword = data[2]
    return [str(ixtoword[i]) for i in range(1, len(ixtoword))]


def load_damsm_text_encoder(text_encoder, state):
    """Assign an AttnGAN `text_encoder<k>.pth` (RNN_ENCODER) to a DAMSM `TextEncoder` built with
    `vocabulary_size = n_words + 1` and the tokenizer of `attngan_vocabulary`: reference word id k
    is ganlib id k + 1 (0 padding, 1 out-of-vocabulary, a zero row)."""
    state = dict(read_state_dict(state, "state"))
    table = state["encoder.weight"] if "encoder.weight" in state else None
    if table is None:
        raise ValueError("state: no 'encoder.weight' (is this an RNN_ENCODER state dict?)")
    state["encoder.weight"] = np.concatenate([table[:1], np.zeros_like(table[:1]), table[1:]])
    pairs = _convert(damsm_text_encoder_entries(text_encoder), state, text_encoder, "text_encoder state")
    for variable, value in pairs:
        variable.assign(value)
    return text_encoder


def load_damsm_image_head(image_encoder, state):
    """Assign the two projections of an AttnGAN `image_encoder<k>.pth` (CNN_ENCODER's `emb_features`,
    `emb_cnn_code`) to a DAMSM `ImageEncoder`; its InceptionV3 keys are left to Keras' ImageNet
    InceptionV3 (same weights, Keras' own file) and counted in the returned message."""
    state = read_state_dict(state, "state")
    head = {k: v for k, v in state.items() if k.startswith(("emb_features.", "emb_cnn_code."))}
    entries = [("emb_features.weight", image_encoder.emb_features.kernel, "conv", None),
               ("emb_cnn_code.weight", image_encoder.emb_cnn_code.kernel, "dense", None),
               ("emb_cnn_code.bias", image_encoder.emb_cnn_code.bias, "vector", None)]
    keys = {k for k, *_ in entries}
    missing = sorted(keys - set(head))
    if missing:
        raise ValueError(f"state: missing the image encoder's projection keys {missing}")
    for variable, value in _convert(entries, head, _Weights(image_encoder.head_weights, image_encoder.name), "state"):
        variable.assign(value)
    return f"loaded the 2 projections; {len(state) - len(head)} InceptionV3 keys left to Keras' InceptionV3"


class _Weights:
    """A named list of weights, for `_convert`'s completeness check."""

    def __init__(self, weights, name):
        self.weights, self.name = list(weights), name


def load_attngan(target, generator_state=None, discriminator_states=None):
    """Assign taoxugit/AttnGAN weights (`netG_epoch_<k>.pth`, `netD<i>.pth`) to an AttnGAN model's
    networks (`ganlib.models.attngan`, a config with `image_size = 64 * 2**(branches - 1)`; the
    bird preset `Config.paper()`), as `load_stackganv2`. The DAMSM encoders load with
    `load_damsm_text_encoder` and `load_damsm_image_head`."""
    _load_attentional(target, attngan_generator_entries, generator_state, discriminator_states)


def _load_attentional(target, generator_entries, generator_state, discriminator_states):
    """AttnGAN's and MirrorGAN's loading: `target` a model or a `(generator, discriminators)` pair."""
    if isinstance(target, tuple):
        generator, discriminators = target
    elif not hasattr(target, "discriminators"):   # a generator alone
        generator, discriminators = target, None
    else:
        generator, discriminators = target.generator, target.discriminators
    jobs = []
    if generator_state is not None:
        state = read_state_dict(generator_state, "generator_state")
        jobs.append(_convert(generator_entries(generator), state, generator, "generator_state"))
    for i, (d, source) in enumerate(zip(discriminators or [], discriminator_states or [])):
        if source is not None:
            name = f"discriminator_states[{i}]"
            jobs.append(_convert(attngan_discriminator_entries(d), read_state_dict(source, name), d, name))
    if discriminator_states is not None and len(discriminator_states) != len(discriminators or []):
        raise ValueError(f"discriminator_states: one per discriminator (smallest first) expected, "
                         f"{len(discriminators or [])}; got {len(discriminator_states)}")
    for pairs in jobs:
        for variable, value in pairs:
            variable.assign(value)
    if generator_state is not None and getattr(target, "generator_ema", None) is not None:
        target.sync_ema()


# --------------------------------------------------------------------------- MirrorGAN
# qiaott/MirrorGAN (`model.py`, `GLAttention.py`, `trainer.py`): G_NET is AttnGAN's with GLAM's
# `NEXT_STAGE_G`: its attention `att` (GLAttentionGeneral: `conv_context` U for the words, `linear` V
# and `conv_sentence_vis` for the sentence) and `conv`, the 1x1 convolution joining [h, word context,
# sentence context] (the order ganlib concatenates them in). The discriminators are AttnGAN's.
def mirrorgan_generator_entries(generator):
    """The (reference key, variable, kind, fix) entries of MirrorGAN's G_NET for a `mirrorgan` generator."""
    layers = _nested_names(generator)
    fc = layers["F_ca"].fc

    def join(i, key):
        sentence = layers[f"F{i}_sent_attn"]
        return ([(f"{key}.att.conv_context.weight", layers[f"F{i}_attn"].U, "pointwise", None),
                 (f"{key}.att.linear.weight", sentence.linear.kernel, "dense", None),
                 (f"{key}.att.linear.bias", sentence.linear.bias, "vector", None),
                 (f"{key}.att.conv_sentence_vis.weight", sentence.kernel, "pointwise", None)]
                + _conv(f"{key}.conv", layers[f"F{i}_join_conv"]))
    return ([("ca_net.fc.weight", fc.kernel, "dense", None), ("ca_net.fc.bias", fc.bias, "vector", None)]
            + _tree_entries(layers, join))


def load_mirrorgan(model_or_generator, generator_state=None, discriminator_states=None):
    """Assign qiaott/MirrorGAN weights to a MirrorGAN model or generator (`ganlib.models.mirrorgan`,
    a config with `image_size = 64 * 2**(branches - 1)`; the birds preset `Config.paper()`).

    Args:
        model_or_generator: a `MirrorGAN`, its `generator`, or a `(generator, discriminators)` pair.
        generator_state: G_NET's state dict (`netG_epoch_<k>.pth`: a path .pth/.pt/.npz or a mapping).
        discriminator_states: `netD0.pth` .. (D_NET64/128/256, AttnGAN's layout), smallest first.

    Raises:
        ValueError: a key missing or left over, or a shape that does not fit (nothing is assigned then).

    The STEM (the DAMSM text encoder) loads with `load_damsm_text_encoder`, the STREAM with `load_stream`.
    """
    _load_attentional(model_or_generator, mirrorgan_generator_entries, generator_state, discriminator_states)
    return model_or_generator


# --------------------------------------------------------------------------- MirrorGAN's STREAM


def stream_decoder_entries(decoder):
    """CAPTION_RNN's keys -> a `ganlib.models.stream.CaptionRNN`'s weights."""
    cell = decoder.cell
    return ([("embed.weight", decoder.embed.embeddings, "vector", None)]
            + [(f"lstm.{ref}", getattr(cell, ours), kind, None) for ref, ours, kind in _LSTM_FIELDS]
            + [("linear.weight", decoder.linear.kernel, "dense", None),
               ("linear.bias", decoder.linear.bias, "vector", None)])


def stream_encoder_entries(encoder, state):
    """CAPTION_CNN's projection and BatchNorm keys; its `resnet.*` keys (in `state`) read and dropped."""
    dropped = [(key, None, None, None) for key in state if key.startswith("resnet.")]
    return ([("linear.weight", encoder.linear.kernel, "dense", None),
             ("linear.bias", encoder.linear.bias, "vector", None)] + _bn("bn", encoder.bn) + dropped)


def load_stream(target, cnn_state=None, rnn_state=None):
    """Assign qiaott/MirrorGAN's STREAM weights to a `ganlib.models.stream.Stream`.

    Args:
        target: a built `Stream` whose `Config` has the checkpoint's `embed_size` and
            `hidden_size` (the reference: 256 and 512) and whose tokenizer has its vocabulary size.
        cnn_state: CAPTION_CNN's state dict (`cnn_encoder.ckpt`): a path (.pth/.pt/.npz) or a mapping;
            only `linear.*` and `bn.*` are assigned (see the module docstring). None: left as it is.
        rnn_state: CAPTION_RNN's state dict (`rnn_decoder.ckpt`), likewise. None: left as it is.

    Returns:
        `target`.

    Raises:
        ValueError: a key missing or left over, or a shape that does not fit (nothing is assigned then).
    """
    from types import SimpleNamespace

    jobs = []
    if cnn_state is not None:
        state = read_state_dict(cnn_state, "cnn_state")
        enc = target.encoder
        head = SimpleNamespace(name=f"{enc.name} (projection and BatchNorm)", weights=enc.linear.weights + enc.bn.weights)
        jobs.append(_convert(stream_encoder_entries(enc, state), state, head, "cnn_state"))
    if rnn_state is not None:
        state = read_state_dict(rnn_state, "rnn_state")
        jobs.append(_convert(stream_decoder_entries(target.decoder), state, target.decoder, "rnn_state"))
    for pairs in jobs:
        for variable, value in pairs:
            variable.assign(value)
    return target


# --------------------------------------------------------------------------- HDGAN
# ypxie/HDGan (`HDGan/models/hd_networks.py`, `HDGan/HDGan.py`): the trainer saves `G_epoch<k>.pth`
# (Generator) and `D_epoch<k>.pth` (one Discriminator module holding every scale's encoder and
# branches, `*_64`, `*_128`, `*_256` and `pre_encode`). `load_hdgan` assigns them to
# `ganlib.models.hdgan` networks of the matching `Config`: the birds / flowers HDGAN_256 models are
# `Config.paper()`; other widths map `sent_dim` = `embed_dim`, `noise_dim` = `z_dim`, `emb_dim` =
# `ca_dim`, the G's `hid_dim` = `gf_dim`, the D's `hid_dim` = `df_dim`, `num_resblock`.
# `Sent2FeatMap`'s outputs are viewed (C, 4, 4) by the reference and reshaped (4, 4, C) here, so its
# linear layer and BatchNorm are permuted.
def _hdgan_pad_conv_bn(key, names, name):
    return _conv(f"{key}.1", names[f"{name}_conv"]) + _bn(f"{key}.2", names[f"{name}_bn"])


def hdgan_generator_entries(generator, config):
    """(reference key, variable, kind, fix) for every weight of an HDGAN generator."""
    n = _names(generator)
    width = 16 * 8 * config.gf_dim
    perm = np.arange(width).reshape(width // 16, 16).T.reshape(-1)
    fix = lambda w: w[..., perm]  # noqa: E731
    fc = n["sent2featmap_fc"]
    entries = [("condEmbedding.linear.weight", n["F_ca"].fc.kernel, "dense", None),
               ("condEmbedding.linear.bias", n["F_ca"].fc.bias, "vector", None),
               ("vec_to_tensor.out.0.weight", fc.kernel, "dense", fix),
               ("vec_to_tensor.out.0.bias", fc.bias, "vector", fix)]
    entries += _bn("vec_to_tensor.out.1", n["sent2featmap_bn"], fix)
    size = 4
    while size <= config.image_size:
        k = int(size > 4)   # index 0 is the upsampling from 8 px on
        if size in config.reduce_at:
            entries += _hdgan_pad_conv_bn(f"scale_{size}.{k}", n, f"scale_{size}_reduce")
            k += 1
        for r in range(config.num_resblock):
            for j, half in enumerate("ab"):
                entries += _hdgan_pad_conv_bn(f"scale_{size}.{k + r}.res_block.{j}", n, f"scale_{size}_res{r}_{half}")
        if size in config.side_outputs:
            entries += _conv(f"tensor_to_img_{size}.1", n[f"to_img_{size}_conv"])
        size *= 2
    return entries


def hdgan_discriminator_entries(discriminator, config, size):
    """(reference key, variable, kind, fix) of the reference Discriminator's `size` px modules."""
    n = _names(discriminator)
    downs = int(np.log2(size // 8))
    entries = []

    def conv_bn(key, name, norm=True):
        return _conv(f"{key}.0", n[f"{name}_conv"]) + (_bn(f"{key}.1", n[f"{name}_bn"]) if norm else [])

    for k in range(downs):
        entries += conv_bn(f"img_encoder_{size}.node.{k}", f"down{k}", norm=k > 0)
    if size == config.image_size:
        entries += conv_bn("pre_encode", "pre_encode")
    else:
        entries += conv_bn(f"img_encoder_{size}.node.{downs}", "encode5")
    entries += conv_bn(f"pair_disc_{size}.node.0", "pair_1x1")
    entries += _conv(f"pair_disc_{size}.node.1", n["pair_score"])
    entries += [(f"context_emb_pipe_{size}.0.weight", n["sent_code"].kernel, "dense", None),
                (f"context_emb_pipe_{size}.0.bias", n["sent_code"].bias, "vector", None)]
    if "local_score" in n:
        entries += _conv(f"local_img_disc_{size}", n["local_score"])
    return entries


def load_hdgan(target, generator_state=None, discriminator_state=None):
    """Assign ypxie/HDGan weights to an HDGAN model's networks.

    Args:
        target: a `ganlib.models.hdgan.HDGAN` (an EMA copy of G is set to the loaded weights too).
        generator_state: the Generator's state dict (`G_epoch<k>.pth`): a path (.pth or .npz) or a
            mapping key -> array; None leaves G as it is.
        discriminator_state: the Discriminator's state dict (`D_epoch<k>.pth`, every scale in one),
            split here over `target.discriminators`; None leaves them as they are.

    Returns:
        `target`.

    Raises:
        ValueError: a key missing or left over, or a shape that does not fit (nothing is assigned
            then); the Config must be the checkpoint's (see above).
    """
    cfg = target.config
    jobs = []
    if generator_state is not None:
        state = read_state_dict(generator_state, "generator_state")
        g = target.generator
        jobs.append(_convert(hdgan_generator_entries(g, cfg), state, g, "generator_state"))
    if discriminator_state is not None:
        state = read_state_dict(discriminator_state, "discriminator_state")
        per_scale = [hdgan_discriminator_entries(d, cfg, s) for d, s in zip(target.discriminators, cfg.branch_sizes)]
        known = {key for entries in per_scale for key, *_ in entries}
        unused = sorted(k for k in state if k not in known)
        if unused:
            raise ValueError(f"discriminator_state: keys for no discriminator of this config (side outputs with a "
                             f"discriminator: {cfg.branch_sizes}): {unused[:8]} ({len(unused)})")
        for d, entries in zip(target.discriminators, per_scale):
            mine = {key for key, *_ in entries}
            jobs.append(_convert(entries, {k: v for k, v in state.items() if k in mine}, d, "discriminator_state"))
    for pairs in jobs:   # assign only once every state dict has been checked
        for variable, value in pairs:
            variable.assign(value)
    if generator_state is not None and getattr(target, "generator_ema", None) is not None:
        target.sync_ema()
    return target


# --------------------------------------------------------------------------- pix2pixHD
# NVIDIA/pix2pixHD (`models/networks.py`) saves `latest_net_G.pth`, `latest_net_D.pth` and
# `latest_net_E.pth` (plain state dicts). Convolutions and transposed convolutions both go
# (O|I, I|O, kh, kw) -> (kh, kw, I|O, O|I) ("conv"); instance norms have no weights.
def _pix2pixhd_trunk(layers, cfg, prefix, key, with_back):
    """GlobalGenerator.model: [pad, conv, IN, ReLU], (conv, IN, ReLU) x downs, res blocks, (convT,
    IN, ReLU) x ups, [pad, conv, tanh]."""
    nd, nb = cfg.n_downsample_global, cfg.n_blocks_global
    entries = _conv(f"{key}.1", layers[f"{prefix}_front"])
    for i in range(nd):
        entries += _conv(f"{key}.{4 + 3 * i}", layers[f"{prefix}_down{i}"])
    start = 4 + 3 * nd
    for j in range(nb):
        entries += _conv(f"{key}.{start + j}.conv_block.1", layers[f"{prefix}_res{j}_a"])
        entries += _conv(f"{key}.{start + j}.conv_block.5", layers[f"{prefix}_res{j}_b"])
    for i in range(nd):
        entries += _conv(f"{key}.{start + nb + 3 * i}", layers[f"{prefix}_up{i}"])
    if with_back:
        entries += _conv(f"{key}.{start + nb + 3 * nd + 1}", layers[f"{prefix}_back"])
    return entries


def pix2pixhd_generator_entries(generator, cfg):
    """The entries of the reference's GlobalGenerator (netG global) or LocalEnhancer (netG local)."""
    layers = _names(generator)
    if cfg.netG == "global":
        return _pix2pixhd_trunk(layers, cfg, "G1", "model", with_back=True)
    if cfg.netG != "local":
        raise ValueError(f"the reference has no {cfg.netG!r} generator (global or local)")
    entries = _pix2pixhd_trunk(layers, cfg, "G1", "model", with_back=False)
    n = cfg.n_local_enhancers
    for k in range(1, n + 1):
        p = f"G{k + 1}"
        entries += _conv(f"model{k}_1.1", layers[f"{p}_front"]) + _conv(f"model{k}_1.4", layers[f"{p}_down"])
        for j in range(cfg.n_blocks_local):
            entries += _conv(f"model{k}_2.{j}.conv_block.1", layers[f"{p}_res{j}_a"])
            entries += _conv(f"model{k}_2.{j}.conv_block.5", layers[f"{p}_res{j}_b"])
        entries += _conv(f"model{k}_2.{cfg.n_blocks_local}", layers[f"{p}_up"])
        if k == n:
            entries += _conv(f"model{k}_2.{cfg.n_blocks_local + 4}", layers[f"{p}_back"])
    return entries


def pix2pixhd_discriminator_entries(discriminator, k, num_d, n_layers):
    """D_k (k = 1 the finest) is the reference's `scale{num_D - k}` (it sees the input pooled k - 1 times)."""
    layers = _names(discriminator)
    scale = f"scale{num_d - k}"
    entries = []
    for j in range(n_layers + 1):
        entries += _conv(f"{scale}_layer{j}.0", layers[f"D{k}_conv{j}"])
    return entries + _conv(f"{scale}_layer{n_layers + 1}.0", layers[f"D{k}_pred"])


def pix2pixhd_encoder_entries(encoder, cfg):
    layers = _names(encoder)
    nd = cfg.n_downsample_E
    entries = _conv("model.1", layers["E_front"])
    for i in range(nd):
        entries += _conv(f"model.{4 + 3 * i}", layers[f"E_down{i}"])
    for i in range(nd):
        entries += _conv(f"model.{4 + 3 * nd + 3 * i}", layers[f"E_up{i}"])
    return entries + _conv(f"model.{4 + 6 * nd + 1}", layers["E_back"])


def load_pix2pixhd(model, generator_state=None, discriminator_state=None, encoder_state=None):
    """Assign NVIDIA/pix2pixHD weights to a `ganlib.models.pix2pixhd.Pix2PixHD` built from the
    matching `Config` (e.g. the published label2city 2048x1024 generator: `Config.paper()`; its
    1024x512 one: `Config.paper("global")`; with `--instance_feat`: `replace(instance_feat=True)`).

    Args:
        model: the `Pix2PixHD` model (its `G`, `discriminators`, `encoder`).
        generator_state: `latest_net_G.pth` (a path .pth / .npz, or a mapping key -> array).
        discriminator_state: `latest_net_D.pth` (the MultiscaleDiscriminator, all scales).
        encoder_state: `latest_net_E.pth`.

    Every key must be used and every weight set (ValueError otherwise, nothing assigned).
    Returns `model`.
    """
    cfg, jobs = model.config, []
    if generator_state is not None:
        state = read_state_dict(generator_state, "generator_state")
        jobs.append(_convert(pix2pixhd_generator_entries(model.G, cfg), state, model.G, "generator_state"))
    if discriminator_state is not None:
        state = read_state_dict(discriminator_state, "discriminator_state")
        entries = [e for k, d in enumerate(model.discriminators, 1)
                   for e in pix2pixhd_discriminator_entries(d, k, cfg.num_D, cfg.n_layers_D)]
        group = _Group(model.discriminators)
        jobs.append(_convert(entries, state, group, "discriminator_state"))
    if encoder_state is not None:
        if model.encoder is None:
            raise ValueError("encoder_state given, but the model has no encoder: build it with instance_feat=True")
        state = read_state_dict(encoder_state, "encoder_state")
        jobs.append(_convert(pix2pixhd_encoder_entries(model.encoder, cfg), state, model.encoder, "encoder_state"))
    for pairs in jobs:
        for variable, value in pairs:
            variable.assign(value)
    return model


class _Group:
    """Several networks seen as one by `_convert` (the reference's one MultiscaleDiscriminator)."""

    def __init__(self, networks):
        self.name = "+".join(n.name for n in networks)
        self.weights = [w for n in networks for w in n.weights]
