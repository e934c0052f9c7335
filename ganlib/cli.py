"""The `ganlib` command line (also `python -m ganlib`).

    ganlib data synthbirds --out DIR --n N --size S --seed K
    ganlib data synthstreets --out DIR --n N --size WxH --seed K
    ganlib data check cub|flowers|coco|synthbirds|synthstreets|cityscapes [--root DIR] [--no-decode]
    ganlib models                                   # the papers, their variants and presets
    ganlib train cgan --preset fast|paper [--variant NAME] [--data NAME --root DIR] [--steps N] --out DIR [--resume]
    ganlib train cgan --data cub --text-encoder damsm:DIR --out DIR   # sentence features of a pretrained DAMSM
    ganlib train cgan ... --devices N               # data-parallel (JAX, TensorFlow); README: several hosts
    ganlib train stackgan --preset fast --out DIR   # OUT/stage1, then OUT/stage2
    ganlib evaluate RUN_DIR
    ganlib leaderboard --out DIR                     # every fast preset on one SynthBirds evaluation
    ganlib sample RUN_DIR --caption "..." --out x.png   # or --class-id K (class models), --n N (unconditional)
    ganlib bench stackganpp --preset fast [--batch N] [--steps N] [--warmup N] [--precision fp32|bf16] [--json FILE]
    ganlib grade NN [--submission FILE | --solutions] [--results results.json]
    ganlib release NN --out DIR          # student tree: no solutions, no hidden tests
    ganlib autograder NN --out autograder.zip
    ganlib stubs [--check]
    ganlib pretrain damsm --data synthbirds|cub|coco [--root DIR] --out DIR [--preset fast|paper|coco] [--epochs N] [--resume]
    ganlib pretrain stream --data synthbirds|cub|coco [--root DIR] --out DIR [--preset fast|paper] [--epochs N] [--resume]
    ganlib pretrain vs --data synthbirds --out DIR [--preset fast|paper] [--epochs N] [--resume]   # HDGAN's VS model
    ganlib pretrain segmenter [--data synthstreets|cityscapes --root DIR] --out DIR [--epochs N]
"""

import argparse
import json
import sys

from ganlib.models import MODELS
from ganlib.models.registry import PRESETS


def _data(args):
    if args.dataset == "synthstreets":
        from ganlib.data import synthstreets

        path = synthstreets.generate(args.out, n=args.n or 3000, size=args.size or "256x128", seed=args.seed)
        print(f"SynthStreets written to {path}")
        return 0
    from ganlib.data import synthbirds

    size = int(args.size) if args.size and args.size.isdigit() else None
    if args.size and size is None:
        raise ValueError(f"--size must be an integer number of pixels for synthbirds, got {args.size!r}")
    path = synthbirds.generate(args.out, n=args.n or 6000, size=size or 64, seed=args.seed, verbose=True)
    print(f"SynthBirds written to {path}")
    return 0


def _data_check(args):
    from ganlib.data.check import check_dataset

    report = check_dataset(args.name, root=args.root, decode=not args.no_decode)
    return 0 if report["ok"] else 1


def _train(args):
    from ganlib import runs

    runs.train(args.model, preset=args.preset, data=args.data, root=args.root, steps=args.steps,
               out=args.out, resume=args.resume, tensorboard=args.tensorboard, variant=args.variant,
               text_encoder=args.text_encoder,
               devices=args.devices, coordinator=args.coordinator, num_processes=args.num_processes,
               process_id=args.process_id)
    return 0


def _models(args):
    from ganlib import models

    for spec in models.import_all():
        print(f"{spec.name:<12} {spec.title}")
        print(f"{'':<12} presets: fast, paper; conditions: {', '.join(spec.conditions)}"
              + (f"; stages: {', '.join(f for f, _ in spec.stages(spec.config.fast()))}" if spec.stages else ""))
        for name, variant in spec.variants.items():
            print(f"{'':<12} --variant {name}: {variant.help}")
    return 0


def _leaderboard(args):
    from ganlib import leaderboard

    return leaderboard.run_from_args(args)


def _evaluate(args):
    from ganlib import runs
    from ganlib.callbacks import format_record

    record = runs.evaluate_run(args.run_dir, n=args.n)
    print(format_record(record))
    print(json.dumps(record, indent=1))
    return 0


def _sample(args):
    from ganlib import runs

    conditions = args.caption or args.class_id or args.n
    if not conditions:
        raise ValueError("say what to generate: --caption TEXT (text models), --class-id K (class models) "
                         "or --n N (unconditional models)")
    path = runs.sample_run(args.run_dir, conditions, args.out, seed=args.seed)
    print(f"wrote {path}")
    return 0


def _bench(args):
    from ganlib import bench

    bench.run(args.model, preset=args.preset, batch=args.batch, steps=args.steps, warmup=args.warmup,
              precision=args.precision, json_path=args.json)
    return 0


def _grade(args):
    from ganlib.course import grading

    return grading.run_from_args(args)


def _stubs(args):
    from ganlib.course import stubs

    return stubs.main(["--check"] if args.check else [])


def _pretrain(args):
    from ganlib import pretrain

    if args.network in ("stream", "vs"):
        if args.preset == "coco":
            raise ValueError(f"pretrain {args.network}: --preset must be fast or paper (coco is a DAMSM preset)")
        train = {"stream": pretrain.train_stream, "vs": pretrain.train_vs}[args.network]
        train(args.out, data=args.data, root=args.root,
              preset=args.preset or ("fast" if args.data == "synthbirds" else "paper"),
              epochs=args.epochs, resume=args.resume, steps_per_epoch=args.steps_per_epoch,
              seed=args.seed, backbone_weights=args.backbone_weights)
        return 0
    if args.network == "segmenter":
        data = "synthstreets" if args.data == "synthbirds" else args.data
        pretrain.train_segmenter(args.out, data=data, root=args.root, seed=args.seed,
                                 **({"epochs": args.epochs} if args.epochs else {}))
        return 0

    preset = args.preset or ("fast" if args.data == "synthbirds" else "coco" if args.data == "coco" else "paper")
    pretrain.train_damsm(args.out, data=args.data, root=args.root, preset=preset, epochs=args.epochs,
                         resume=args.resume, steps_per_epoch=args.steps_per_epoch, seed=args.seed,
                         inception_weights=args.inception_weights)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="ganlib", description="Text-to-image GANs, paper by paper.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="generate a synthetic dataset, or check a dataset folder")
    data_sub = p.add_subparsers(dest="dataset", required=True, metavar="{synthbirds,synthstreets,check}")
    for name in ("synthbirds", "synthstreets"):
        g = data_sub.add_parser(name, help=f"generate {name}")
        g.add_argument("--out", required=True, help="output folder")
        default_n, size_help = ((6000, "image side in pixels (default 64)") if name == "synthbirds" else
                                (3000, "WxH in pixels, up to 2048x1024, or a width (height = width / 2; "
                                       "default 256x128)"))
        g.add_argument("--n", type=int, default=None, help=f"number of images (default {default_n})")
        g.add_argument("--size", default=None, help=size_help)
        g.add_argument("--seed", type=int, default=0)
        g.set_defaults(run=_data)
    g = data_sub.add_parser("check", help="count a dataset's images and captions per split and list "
                                          "missing or unreadable files (exit status 1 if any)")
    g.add_argument("name", choices=["cub", "flowers", "coco", "synthbirds", "synthstreets", "cityscapes"])
    g.add_argument("--root", default=None, help="dataset folder (default: <data root>/NAME)")
    g.add_argument("--no-decode", action="store_true", help="do not decode every image (faster)")
    g.set_defaults(run=_data_check)

    p = sub.add_parser("train", help="train a model; writes checkpoints, sample grids, metrics.json")
    p.add_argument("model", choices=MODELS)
    p.add_argument("--preset", choices=PRESETS, default="fast")
    p.add_argument("--data", default=None, help="dataset name (default: synthstreets for pix2pixhd, "
                   "synthbirds for the others)")
    p.add_argument("--root", default=None, help="dataset folder (default: the data root)")
    p.add_argument("--steps", type=int, default=None, help="total training steps (default: the preset's; per stage for "
                   "staged models: stackgan trains Stage-I, then Stage-II)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs to OUT/logs")
    p.add_argument("--variant", default=None, help="a variant of the model (`ganlib models` lists them), e.g. "
                   "cgan: class; stackgan: no-ca; stackganpp: unconditional")
    p.add_argument("--text-encoder", default=None, metavar="NAME",
                   help="text models' sentence encoder: synthbirds (lessons 01-03's default on SynthBirds), "
                        "damsm (the shipped SynthBirds DAMSM) or damsm:DIR (a DAMSM pretrained with "
                        "`ganlib pretrain damsm --out DIR`, e.g. on real captions)")
    p.add_argument("--devices", type=int, default=None, help="train data-parallel on N devices of this host "
                   "(per process); the preset's batch size is the global batch (JAX, TensorFlow)")
    p.add_argument("--coordinator", default=None, help="several processes (JAX): HOST:PORT of process 0 "
                   "(or set KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    p.add_argument("--num-processes", type=int, default=None, help="several processes (JAX): how many")
    p.add_argument("--process-id", type=int, default=None, help="several processes (JAX): this one's index")
    p.set_defaults(run=_train)

    p = sub.add_parser("models", help="list the papers, their variants and presets")
    p.set_defaults(run=_models)

    p = sub.add_parser("leaderboard", help="train every model's fast preset and score all on one evaluation")
    from ganlib import leaderboard

    leaderboard.add_arguments(p)
    p.set_defaults(run=_leaderboard)

    p = sub.add_parser("evaluate", help="evaluate a run's newest checkpoint; appends to metrics.json")
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=None, help="number of generated images (default: the config's)")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("sample", help="generate images for captions with a run's newest checkpoint")
    p.add_argument("run_dir")
    p.add_argument("--caption", action="append", help="a caption (repeat for several)")
    p.add_argument("--class-id", action="append", type=int, help="a class id, for class models (repeat)")
    p.add_argument("--n", type=int, help="number of images, for unconditional models")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_sample)

    p = sub.add_parser("bench", help="time training steps on synthetic batches: step time, images/s, "
                                     "peak memory, FLOP/s and the machine's matmul calibration")
    p.add_argument("model", choices=MODELS)
    p.add_argument("--preset", choices=["fast", "paper"], default="fast")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first, compilation included (default 3)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: mixed_bfloat16 policy")
    p.add_argument("--json", default=None, help="append the JSON record to this file (one per line)")
    p.set_defaults(run=_bench)

    from ganlib.course import grading

    p = sub.add_parser("grade", help="grade a lesson's exercises; writes a score table and results.json")
    grading.add_arguments(p)
    p.set_defaults(run=_grade)

    from ganlib.course import release

    release.add_release_arguments(sub.add_parser(
        "release", help="write a lesson's student tree (no solutions, no hidden tests)"))
    release.add_autograder_arguments(sub.add_parser(
        "autograder", help="write a lesson's Gradescope autograder zip (hidden tests, offline)"))

    p = sub.add_parser("pretrain", help="pretrain an auxiliary network (damsm: AttnGAN's text and image "
                                        "encoders; stream: MirrorGAN's captioner; vs: HDGAN's visual-semantic model; segmenter: the street-scene segmentation "
                                        "net of pix2pixHD's evaluation); writes weights, metrics.json with test R-precision "
                                        "(damsm), BLEU-1..4 (stream), VS similarity (vs) or pixel accuracy and mIoU (segmenter)")
    p.add_argument("network", choices=["damsm", "stream", "vs", "segmenter"],
                   help="segmenter: default data synthstreets")
    p.add_argument("--data", default="synthbirds", help="dataset name (default synthbirds)")
    p.add_argument("--root", default=None, help="dataset folder (default: the data root)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--preset", choices=["fast", "paper", "coco"], default=None,
                   help="fast: small CNN on 64 px (default for synthbirds); paper: bird.yml, InceptionV3 "
                        "(default otherwise); coco: coco.yml")
    p.add_argument("--epochs", type=int, default=None, help="total epochs (default: the preset's)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap on the steps of an epoch")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inception-weights", default=None, help="InceptionV3 weights file (paper/coco presets; "
                   "default: Keras' ImageNet file, fetched on first use)")
    p.add_argument("--backbone-weights", default=None, help="stream / vs, paper preset: ResNet-152 / InceptionResNetV2 weights file "
                   "(default: Keras' ImageNet file, fetched on first use)")
    p.set_defaults(run=_pretrain)

    p = sub.add_parser("stubs", help="regenerate the student stubs from solutions/ (--check: verify)")
    p.add_argument("--check", action="store_true")
    p.set_defaults(run=_stubs)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError, NotImplementedError) as error:
        print(f"ganlib {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
