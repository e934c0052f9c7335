"""Throughput of SynthBirds rendering and of the tf.data training pipeline.

Run:  python tests/benchmarks/bench_data.py [--images 200]

Prints images per second for rendering (``synthbirds.render``) and for the
batched pipeline (``CaptionedDataset.pipeline``, cached, with augmentation and
mismatched captions) at 64 and 256 px, on small datasets generated in a
temporary folder; then for the 256 px pipeline with the StackGAN++ / AttnGAN
image pyramid (``pyramid=(64, 128, 256)``: keys ``image_64``, ``image_128``,
``image_256``, and the same for ``wrong_image``), cached in memory and
decoded from disk on every step (``cache=False``, the COCO-sized path).
``--pyramid-only`` runs just that part. Not collected by pytest.
"""

import argparse
import tempfile
import time

import numpy as np

from ganlib.data import open_dataset, synthbirds


def bench_render(size: int, count: int) -> float:
    rng = np.random.default_rng(0)
    birds = [synthbirds.sample_bird(int(rng.integers(200)), rng) for _ in range(count)]
    start = time.perf_counter()
    for bird in birds:
        synthbirds.render(bird, size)
    return count / (time.perf_counter() - start)


def bench_pipeline(root, size: int, batch_size: int, batches: int, **kwargs) -> tuple[float, float]:
    ds = open_dataset("synthbirds", root=root, split="train")
    start = time.perf_counter()
    it = ds.pipeline(batch_size=batch_size, image_size=size, wrong="image",
                     **kwargs).as_numpy_iterator()
    next(it)  # builds the cache (decodes every image once)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start), warmup


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images per dataset")
    parser.add_argument("--pyramid-only", action="store_true",
                        help="only the 256 px pipeline with the 64/128/256 pyramid")
    args = parser.parse_args()
    if not args.pyramid_only:
        for size, count in ((64, 300), (256, 40)):
            print(f"render      {size:4d} px: {bench_render(size, count):8.1f} images/s")
    with tempfile.TemporaryDirectory() as tmp:
        root = None
        for size in () if args.pyramid_only else (64, 256):
            start = time.perf_counter()
            root = synthbirds.generate(f"{tmp}/sb{size}", n=args.images, size=size,
                                       verbose=False)
            gen = args.images / (time.perf_counter() - start)
            rate, warmup = bench_pipeline(root, size, batch_size=16, batches=40)
            print(f"generate    {size:4d} px: {gen:8.1f} images/s (render + JPEG + files)")
            print(f"pipeline    {size:4d} px: {rate:8.1f} images/s "
                  f"(batch 16, wrong images; first batch incl. cache {warmup:.2f} s)")
        if root is None:  # the 256 px dataset above, or a new one
            root = synthbirds.generate(f"{tmp}/sb256", n=args.images, size=256, verbose=False)
        for cache in (True, False):
            rate, warmup = bench_pipeline(root, 256, batch_size=16, batches=20,
                                          pyramid=(64, 128, 256), cache=cache)
            print(f"pyramid     256 px: {rate:8.1f} images/s (64/128/256 + wrong images, "
                  f"batch 16, {'cached' if cache else 'decoded from disk'}; first batch "
                  f"{warmup:.2f} s)")


if __name__ == "__main__":
    main()
