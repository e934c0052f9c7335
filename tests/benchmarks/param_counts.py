"""Print the parameter count of every network of every model at its paper (and fast) preset.

    python tests/benchmarks/param_counts.py            # all models
    python tests/benchmarks/param_counts.py stackgan   # one model

A model module may provide `param_counts(config) -> {network: count}` (e.g. to
count both StackGAN stages); otherwise the generator and each discriminator
of `module.build(config)` are counted. Frozen auxiliary networks (the sentence
encoder) are listed separately: they are not trained.
"""

import importlib
import sys

from ganlib.models import MODELS


def generic_counts(module, config):
    model = module.build(config)
    counts = {"G": model.generator.count_params()}
    for i, d in enumerate(model.discriminators):
        counts[f"D_{i}" if len(model.discriminators) > 1 else "D"] = d.count_params()
    for a in model.auxiliaries:
        counts[f"{a.name} (frozen)"] = a.count_params()
    return counts


def main(names):
    for name in names:
        module = importlib.import_module(f"ganlib.models.{name}")
        for preset in ("paper", "fast"):
            config = getattr(module.Config, preset)()
            counts = (module.param_counts(config) if hasattr(module, "param_counts")
                      else generic_counts(module, config))
            print(f"{name} ({preset} preset)")
            for network, n in counts.items():
                print(f"  {network:<32} {n:>12,d}")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:] or [m for m in MODELS if importlib.util.find_spec(f"ganlib.models.{m}")])
