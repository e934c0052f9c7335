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
    ups = sum(name.startswith("F0_up") and name.endswith("_conv") for name in layers)
    if ups != 4:
        raise ValueError(f"generator: the reference G_NET's first branch is 64 px (4 upsamplings in F_0); "
                         f"this one has {ups}: build it with image_size = 64 * 2**(branches - 1)")
    conditional = "F_ca" in layers
    entries = []
    if conditional:
        fc = layers["F_ca"].fc
        entries += [("ca_net.fc.weight", fc.kernel, "dense", None), ("ca_net.fc.bias", fc.bias, "vector", None)]
        condition_width = layers["F_ca"].units
    else:
        condition_width = generator.inputs[0].shape[-1]   # the reference feeds z as the condition
    f0 = _channels_last(layers["F0_fc"].units)
    entries += [("h_net1.fc.0.weight", layers["F0_fc"].kernel, "dense", f0)] + _bn("h_net1.fc.1", layers["F0_fc_bn"], f0)
    for k in range(ups):
        entries += _conv(f"h_net1.upsample{k + 1}.1", layers[f"F0_up{k}_conv"])
        entries += _bn(f"h_net1.upsample{k + 1}.2", layers[f"F0_up{k}_bn"])
    i = 0
    while f"G{i}_conv" in layers:
        entries += _conv(f"img_net{i + 1}.img.0", layers[f"G{i}_conv"])
        if i > 0:
            h = f"h_net{i + 1}"
            entries += _conv(f"{h}.jointConv.0", layers[f"F{i}_joint_conv"], _condition_first(condition_width))
            entries += _bn(f"{h}.jointConv.1", layers[f"F{i}_joint_bn"])
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
    size = discriminator.inputs[0].shape[1]
    downs = sum(name.startswith("down") and name[4:].isdigit() for name in layers)
    if downs < 4:
        raise ValueError(f"discriminator {discriminator.name}: the reference has no discriminator for "
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
    if "cond_conv" in layers:
        condition_width = discriminator.inputs[1].shape[-1]
        entries += _conv("jointConv.0", layers["joint_conv"], _condition_first(condition_width))
        entries += _bn("jointConv.1", layers["joint_bn"])
        entries += _conv("logits.0", layers["cond_conv"]) + _conv("uncond_logits.0", layers["uncond_conv"])
    else:   # unconditional: the reference's only head is `logits`, on the image code
        entries += _conv("logits.0", layers["uncond_conv"])
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
