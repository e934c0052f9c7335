"""The folders of the pretrained helper networks (STREAM, VS): `<weights>.h5`, `config.json`
(the `Config` fields, the vocabulary size and what the run adds) and `vocab.txt`."""

import dataclasses
import json
import os


def resolve(path, shipped, names=None):
    """The folder a helper's `path` names: `None` -> `shipped` (the folder that ships), a key of
    `names` (a shipped name; it wins over a folder of that name in the working directory) -> its
    folder, anything else -> the path itself."""
    if path is None:
        return shipped
    return (names or {}).get(os.fspath(path), os.fspath(path))


def write(out, config, tokenizer, extra=None):
    """`config.json` and `vocab.txt` of a helper folder (the caller writes the weights)."""
    os.makedirs(out, exist_ok=True)
    tokenizer.save(os.path.join(out, "vocab.txt"))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"config": config.to_dict(), "vocabulary_size": tokenizer.vocabulary_size, **(extra or {})},
                  f, indent=1)


def read(path, weights_file, config_class, network):
    """`(config, tokenizer, weights path)` of a helper folder; a missing file or an unknown config
    field is an error naming it and the command that writes the folder (`ganlib pretrain <network>`)."""
    from ganlib.text import Tokenizer

    for name in (weights_file, "config.json", "vocab.txt"):
        if not os.path.isfile(os.path.join(path, name)):
            raise FileNotFoundError(f"{network} folder {path}: missing {name} (write it with "
                                    f"`ganlib pretrain {network} --out {path}`)")
    with open(os.path.join(path, "config.json")) as f:
        fields = json.load(f)["config"]
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(config_class)})
    if unknown:
        raise ValueError(f"{os.path.join(path, 'config.json')}: unknown {network} config fields {unknown}")
    config = config_class(**fields)
    tokenizer = Tokenizer.load(os.path.join(path, "vocab.txt"), max_words=config.max_words)
    return config, tokenizer, os.path.join(path, weights_file)
