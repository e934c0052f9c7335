r"""FLOPs of Keras networks and of an adversarial training step, counted from their layers.

A layer that multiplies by a weight matrix does one multiply-accumulate (MAC) per
kernel entry per *position* it applies the kernel at; one MAC is 2 FLOPs:

* `Dense`, `Conv*Transpose`, `ganlib.layers.UpConv`, `LSTM` / `GRU` / `SimpleRNN`:
  a position per entry of the input without its last axis (a transposed
  convolution scatters each input pixel through the whole kernel);
* `Conv1D` / `Conv2D` / `Conv3D`, `DepthwiseConv*`: a position per output pixel.

$$\text{FLOPs} = 2 \times \text{positions} \times \text{kernel entries}$$

(`kernel`, plus `recurrent_kernel` for recurrent layers). E.g. `Conv2D(8, 3)`
from 3 channels on 8x8 'same': $2 \cdot 64 \cdot (3 \cdot 3 \cdot 3 \cdot 8) = 27648$.

Not counted: biases, activations, normalisation (BatchNorm: a few FLOPs per
activation, against hundreds per activation for the convolution before it),
embeddings (a lookup), upsampling, concatenation, and products a layer computes
with `keras.ops` without a kernel weight (e.g. attention). A layer that holds a
kernel but has no rule here is reported in `uncounted` rather than silently
given 0.

The counts are taken by running the code once eagerly with every counted layer's
`call` wrapped (`FlopCounter`), so they follow what actually runs, nested
networks and composite layers (`ConditioningAugmentation`, the sentence encoder)
included.
"""

import collections
import contextlib
import functools

import numpy as np
from keras import layers, ops

from ganlib.layers import UpConv

# Layers applying their kernel once per input position (last axis excluded).
PER_INPUT_POSITION = (layers.Dense, layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose,
                      UpConv, layers.LSTM, layers.GRU, layers.SimpleRNN)
# Layers applying their kernel once per output position.
PER_OUTPUT_POSITION = (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.DepthwiseConv1D, layers.DepthwiseConv2D)
# Layers with weights whose FLOPs are negligible or nil (see the module docstring).
NOT_COUNTED = (layers.BatchNormalization, layers.LayerNormalization, layers.GroupNormalization,
               layers.Embedding)


def kernel_entries(layer):
    """Number of entries of the layer's `kernel` (and `recurrent_kernel`) weights."""
    return int(sum(np.prod(w.shape) for w in layer.weights
                   if w.name in ("kernel", "recurrent_kernel", "depthwise_kernel")))


def layer_flops(layer, x, y):
    """Forward FLOPs of one call of `layer` on input `x` giving output `y` (whole batch),
    or None when the layer has no rule."""
    if isinstance(layer, PER_OUTPUT_POSITION):
        positions = np.prod(ops.shape(y)[:-1])
    elif isinstance(layer, PER_INPUT_POSITION):
        positions = np.prod(ops.shape(x)[:-1])
    else:
        return None
    return 2 * int(positions) * kernel_entries(layer)


def _leaves(layer):
    """The layers to count inside `layer`: those with a rule (not entered), and weighted
    layers without one (to report); composite layers are entered."""
    if isinstance(layer, PER_INPUT_POSITION + PER_OUTPUT_POSITION):
        return [layer]
    children = [child for child in layer._flatten_layers(include_self=False, recursive=False)]
    if children:
        return [leaf for child in children for leaf in _leaves(child)]
    if isinstance(layer, NOT_COUNTED) or kernel_entries(layer) == 0:
        return []
    return [layer]


class FlopCounter(contextlib.AbstractContextManager):
    """Counts the FLOPs of named networks' layers while code runs eagerly inside `with`.

    Args:
        networks: `{name: keras.Model or Layer}`; each counted layer belongs to the
            first network that contains it.

    After the block:
        `calls[name]`: how many times the network was called;
        `forward[name]`: FLOPs of all its layers' calls (whole batches);
        `first_call[name]`: FLOPs of its first call;
        `trained`: FLOPs of calls of layers with trainable weights; `frozen` the rest;
        `uncounted`: paths of weighted layers with no FLOP rule that were called.

    Example:
        >>> import keras, numpy as np
        >>> net = keras.Sequential([keras.Input((10,)), keras.layers.Dense(20)])
        >>> with FlopCounter({"net": net}) as counter:
        ...     _ = net(np.zeros((1, 10), "float32"))
        >>> counter.forward["net"]
        400
    """

    def __init__(self, networks):
        self.networks = dict(networks)
        self.calls = collections.Counter()
        self.forward = collections.Counter()
        self.first_call = {}
        self.trained = 0
        self.frozen = 0
        self.uncounted = set()
        self._patched = []

    def __enter__(self):
        seen = set()
        for name, network in self.networks.items():
            self._patch(network, self._network_call(name, network.call))
            for leaf in _leaves(network):
                if id(leaf) not in seen:
                    seen.add(id(leaf))
                    self._patch(leaf, self._leaf_call(name, leaf, leaf.call))
        return self

    def __exit__(self, *exc):
        for layer in reversed(self._patched):
            object.__delattr__(layer, "call")
        self._patched = []
        return False

    def _patch(self, layer, fn):
        object.__setattr__(layer, "call", fn)
        self._patched.append(layer)

    def _network_call(self, name, call):
        @functools.wraps(call)
        def counted(*args, **kwargs):
            before = self.forward[name]
            out = call(*args, **kwargs)
            self.calls[name] += 1
            self.first_call.setdefault(name, self.forward[name] - before)
            return out
        return counted

    def _leaf_call(self, name, layer, call):
        @functools.wraps(call)
        def counted(x, *args, **kwargs):
            y = call(x, *args, **kwargs)
            flops = layer_flops(layer, x, y[0] if isinstance(y, (list, tuple)) else y)
            if flops is None:
                self.uncounted.add(layer.path)
                return y
            self.forward[name] += flops
            if layer.trainable_weights:
                self.trained += flops
            else:
                self.frozen += flops
            return y
        return counted


def forward_flops(network, inputs):
    """Forward FLOPs per example of `network` on `inputs` (a batch; its first axis the batch)."""
    batch = int(ops.shape(ops.convert_to_tensor(_first(inputs)))[0])
    with FlopCounter({"net": network}) as counter:
        network(inputs)
    if counter.uncounted:
        raise ValueError(f"layers without a FLOP rule in ganlib.flops: {sorted(counter.uncounted)}")
    return counter.forward["net"] // batch


def _first(structure):
    while isinstance(structure, (list, tuple)):
        structure = structure[0]
    if isinstance(structure, dict):
        return _first(next(iter(structure.values())))
    return structure


def train_step_flops(model, batch):
    r"""FLOPs of one training step of an `AdversarialModel` on `batch`, per image, by network.

    Runs the step's three parts once eagerly on `batch` (no weights change:
    the losses are computed, not applied; BatchNorm's moving statistics do move),
    counting every call of the generator, each discriminator and each auxiliary
    network:

    1. `sample_noise`, `generator_outputs` (G's forward pass; frozen auxiliaries:
       text encoder, a frozen earlier stage);
    2. `discriminator_loss` (each D on real, wrong and fake inputs);
    3. `generator_loss` (each D again, on the fakes).

    A training step is estimated as the standard
    $3\times$ forward for every call of a layer with trainable weights (forward
    + backward: gradients with respect to weights and to inputs, each ~ the
    forward's cost) and $1\times$ forward for frozen layers (no backward):

    $$\text{step} = B\,\big(3 F_{\text{trainable}} + F_{\text{frozen}}\big)$$

    with $F$ per image. The optimizer updates and the EMA of G (a few FLOPs per
    weight per step, independent of $B$) are not counted.

    Returns:
        dict: `forward` `{network: forward FLOPs per image of one call}`,
        `calls` `{network: calls per step}`, `train_per_image` (the estimate
        above, per image), `uncounted` (sorted layer paths).
    """
    batch = {k: ops.convert_to_tensor(v) for k, v in batch.items()}
    n = int(ops.shape(batch["image"])[0])
    networks = {}
    for network in [model.generator, *model.discriminators, *model.auxiliaries]:
        name = network.name if network.name not in networks else f"{network.name}_{len(networks)}"
        networks[name] = network
    with FlopCounter(networks) as counter:
        noise = model.sample_noise(batch)
        fakes = model.generator_outputs(batch, noise, training=True)
        model.discriminator_loss(batch, fakes, training=True)
        model.generator_loss(batch, fakes, training=True)
    return {"forward": {k: v // n for k, v in counter.first_call.items()},
            "calls": dict(counter.calls),
            "train_per_image": (3 * counter.trained + counter.frozen) // n,
            "uncounted": sorted(counter.uncounted)}
