"""Loading images: our loader against what a user would otherwise write.

References, on the same folders, sizes and colour modes:
- a plain PIL loop (list the class folders, open, convert, resize, ``np.asarray`` into a
  preallocated float32 array, / 255);
- ``keras.utils.image_dataset_from_directory`` iterated once into numpy (no shuffle).

Ours cold is ``load_images(cache=False)``; ours cached is a repeated load of the unchanged
folder served from an ``ImageCache`` primed once. Also reported: JPEG draft-mode decoding
against full decoding, how to decode in parallel (plain loop, thread pools, our process
pool) and what starting the worker processes costs on first use.

Keras is imported only for its own comparisons, which run last, so its import and its
threads do not colour the other timings.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks import common
from cnn_tui.core.data import dataset, decode, folders
from cnn_tui.core.data.cache import ImageCache
from cnn_tui.core.data.locations import list_location
from cnn_tui.core.data.pool import warm_up_pool, worker_count
from cnn_tui.core.events import ignore

GROUP = "loading"


def plain_pil_loop(root: Path, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """What a user would write: sorted class folders, one image at a time into a float32 array."""
    mode = "L" if channels == 1 else "RGB"
    files, labels = [], []
    for label, name in enumerate(sorted(os.listdir(root))):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            files.append(os.path.join(folder, file))
            labels.append(label)
    x = np.empty((len(files), size, size, channels), dtype=np.float32)
    for i, path in enumerate(files):
        with Image.open(path) as image:
            image = image.convert(mode).resize((size, size), Image.BILINEAR)
            x[i] = np.asarray(image, dtype=np.float32).reshape(size, size, channels) / 255
    return x, np.asarray(labels)


def keras_loader(root: Path, size: int, channels: int) -> Callable[[], Any]:
    """``image_dataset_from_directory`` iterated once into numpy (keras imported here)."""
    import keras  # noqa: PLC0415 — keras takes seconds to import; only its own comparisons need it

    def load() -> tuple[np.ndarray, np.ndarray]:
        ds = keras.utils.image_dataset_from_directory(
            str(root), labels="inferred", color_mode="grayscale" if channels == 1 else "rgb",
            image_size=(size, size), batch_size=256, shuffle=False, verbose=False,
        )
        xs, ys = [], []
        for xb, yb in ds:
            xs.append(np.asarray(xb))
            ys.append(np.asarray(yb))
        x = np.concatenate(xs)
        x /= 255
        return x, np.concatenate(ys)

    return load


def rounds(funcs: dict[str, Callable[[], Any]], repeats: int, *, warm: bool = True) -> dict[str, list[float]]:
    """Like ``common.alternate`` for several functions: each round runs all, order rotated."""
    names = list(funcs)
    if warm:
        for name in names:
            funcs[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            started = time.perf_counter()
            funcs[name]()
            times[name].append(time.perf_counter() - started)
    return times


def _sets(ctx: Any) -> list[tuple[str, Path, int, int]]:
    """(label, training folder, image size, channels) for every set measured."""
    pngs = 2_000 if ctx.quick else 20_000
    jpegs = 200 if ctx.quick else 2_000
    sets = [
        ("demo digits 8x8 -> 16", common.demo_digits() / "training", 16, 1),
        (f"PNG 28x28 gray ({pngs:,} set)", common.synthetic_pngs(pngs) / "training", 28, 1),
        (f"JPEG 500x375 -> 64 rgb ({jpegs:,} set)", common.synthetic_jpegs(jpegs) / "training", 64, 3),
    ]
    if ctx.data_dir:
        root = ctx.data_dir / "training"
        channels = dataset.resolve_channels(list_location(root), "auto")
        sets.append((f"--data-dir {ctx.data_dir.name} -> 64", root, 64, channels))
    return sets


def _count(root: Path) -> int:
    return sum(1 for d in root.iterdir() if d.is_dir() for f in d.iterdir() if not f.name.startswith("."))


def stat_every_file(root: Path) -> int:
    """Only what a correct cache check cannot skip: list every class folder, stat every file."""
    count = 0
    with os.scandir(root) as classes:
        for folder in classes:
            if folder.is_dir():
                with os.scandir(folder.path) as files:
                    for entry in files:
                        entry.stat()
                        count += 1
    return count


def pool_startup(workers: int) -> float:
    """Seconds from no worker processes to all of them ready to decode."""
    from joblib.externals.loky import get_reusable_executor  # noqa: PLC0415 — as core.data.pool: only when measured

    get_reusable_executor(max_workers=workers).shutdown(wait=True)
    started = time.perf_counter()
    warm_up_pool(workers, wait=True)
    return time.perf_counter() - started


def parallel_ways(root: Path, size: int, channels: int, workers: int, repeats: int) -> dict[str, list[float]]:
    """Decode one folder into uint8 rows: plain loop, thread pool per file, thread pool per
    chunk, our process pool (chunks into a shared memory-mapped file)."""
    listing = list_location(root)
    files = listing.files
    shape = (len(files), size, size, channels)
    chunk = 256

    def loop() -> None:
        out = np.empty(shape, dtype=np.uint8)
        decode.decode_into_array(out, list(range(len(files))), files, size, channels)

    def threads_per_file() -> None:
        out = np.empty(shape, dtype=np.uint8)

        def one(i: int) -> None:
            out[i] = decode.decode(files[i], size, channels)[0]

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(len(files))))

    def threads_chunked() -> None:
        out = np.empty(shape, dtype=np.uint8)
        with ThreadPoolExecutor(workers) as pool:
            jobs = [
                pool.submit(decode.decode_into_array, out, list(range(i, min(i + chunk, len(files)))), files[i : i + chunk], size, channels)
                for i in range(0, len(files), chunk)
            ]
            for job in jobs:
                job.result()

    def processes() -> None:
        threshold, folders.PARALLEL_THRESHOLD = folders.PARALLEL_THRESHOLD, 0  # parallel even for --quick's small set
        try:
            temp = listing.decode(shape, temp=None, emit=ignore, stop=None, workers=workers).temp
        finally:
            folders.PARALLEL_THRESHOLD = threshold
        if temp is not None:
            temp.unlink(missing_ok=True)

    return rounds(
        {"loop": loop, "threads per file": threads_per_file, "threads, chunks": threads_chunked, "processes": processes},
        repeats, warm=False,
    )


def draft_gain(root: Path, size: int, limit: int) -> tuple[list[float], list[float], int]:
    """Serial decode of up to ``limit`` JPEGs with and without Pillow's draft mode."""
    files = sorted(str(p) for p in root.rglob("*.jpg"))[:limit]
    out = np.empty((len(files), size, size, 3), dtype=np.uint8)
    index = list(range(len(files)))
    with_draft, without = common.alternate(
        lambda: decode.decode_into_array(out, index, files, size, 3, draft=True),
        lambda: decode.decode_into_array(out, index, files, size, 3, draft=False),
        3,
    )
    return with_draft, without, len(files)


def run(ctx: Any) -> list[common.Figure]:
    figures: list[common.Figure] = []
    workers = worker_count()
    sets = _sets(ctx)
    common.log(f"   {workers} worker(s); load average {os.getloadavg()[0]:.2f}")

    startup = [pool_startup(workers) for _ in range(1 if ctx.quick else 2)]
    figures.append(common.single(
        GROUP, f"process pool start-up, first use ({workers} workers)", common.median(startup), "s",
        note="warm_up_pool(wait=True) from no workers; the TUI starts them after its first frame",
    ))

    cache_home = Path(tempfile.mkdtemp(prefix="cnn-tui-bench-cache-"))
    cold: dict[str, list[float]] = {}
    try:
        for label, root, size, channels in sets:
            n = _count(root)
            common.log(f"   {label}: {n:,} files")
            store = ImageCache(cache_home / str(len(cold)))

            def ours(root=root, size=size, channels=channels) -> Any:
                return dataset.load_images(root, image_size=size, channels=channels, cache=False)

            def cached(root=root, size=size, channels=channels, store=store) -> Any:
                images = dataset.load_images(root, image_size=size, channels=channels, cache=store)
                assert images.from_cache
                return images

            dataset.load_images(root, image_size=size, channels=channels, cache=store)  # prime the cache
            times = rounds(
                {"ours": ours, "pil": lambda root=root, size=size, channels=channels: plain_pil_loop(root, size, channels),
                 "cached": cached, "stat": lambda root=root: stat_every_file(root),
                 "listing": lambda root=root: list_location(root)},
                ctx.repeats,
            )
            cold[label] = times["ours"]
            figures.append(common.speedup(GROUP, f"{label}: cold load vs plain PIL loop", times["ours"], times["pil"],
                                          target=1.5, note=f"{n:,} files"))
            figures.append(common.speedup(GROUP, f"{label}: cached reload vs cold load", times["cached"], times["ours"],
                                          target=20, note="ImageCache hit: listing + stats + key + float32 copy"))
            figures.append(common.overhead(GROUP, f"{label}: cached reload vs a bare scandir+stat of the files",
                                           times["cached"], times["stat"],
                                           note="the floor: any cache that notices a changed file must stat every file"))
            figures.append(common.overhead(GROUP, f"{label}: listing alone vs a bare scandir+stat of the files",
                                           times["listing"], times["stat"],
                                           note="the part of the reload that notices changes: names, sizes, mtimes, skips"))

        jpeg_label, jpeg_root, jpeg_size, _ = sets[2]
        with_draft, without, n = draft_gain(jpeg_root, jpeg_size, 100 if ctx.quick else 400)
        figures.append(common.speedup(
            GROUP, f"JPEG 500x375 -> {jpeg_size}: decode with draft() vs full decode", with_draft, without, op=None,
            note=f"{n} files, one process; draft decodes at 1/2..1/8 scale before resizing",
        ))

        png_label, png_root, png_size, _ = sets[1]
        ways = parallel_ways(png_root, png_size, 1, workers, ctx.repeats)
        for name in ("threads per file", "threads, chunks", "processes"):
            figures.append(common.speedup(
                GROUP, f"{png_label}: decode with {name} vs plain loop", ways[name], ways["loop"], op=None,
                note=f"{workers} workers; uint8 decode only",
            ))

        keras_import = time.perf_counter()
        import keras  # noqa: F401, PLC0415 — imported here so the timings above do not carry it

        common.log(f"   keras imported in {time.perf_counter() - keras_import:.1f} s")
        for label, root, size, channels in sets:
            ours_times, keras_times = common.alternate(
                lambda root=root, size=size, channels=channels: dataset.load_images(root, image_size=size, channels=channels, cache=False),
                keras_loader(root, size, channels),
                ctx.repeats,
            )
            figures.append(common.speedup(
                GROUP, f"{label}: cold load vs keras image_dataset_from_directory", ours_times, keras_times, target=1.0,
                note="keras: tf.data decode (parallel), iterated once into numpy, / 255",
            ))
    finally:
        shutil.rmtree(cache_home, ignore_errors=True)
    common.log(f"   load average at the end {os.getloadavg()[0]:.2f}")
    return figures
