"""The decoded-array cache key: any change to a file's name, size or modification time misses."""

import os

from cnn_tui.core.data import decode, pool
from cnn_tui.core.data.cache import make_key
from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.data.locations import list_location

from tests_support import write_image_folder


def test_a_touched_or_renamed_file_misses_the_cache(tmp_path, _isolated_cache):
    root = write_image_folder(tmp_path / "t", 2, per_class=3)
    assert not load_images(root, image_size=8).from_cache
    assert load_images(root, image_size=8).from_cache
    victim = sorted((root / "1").iterdir())[0]
    stat = victim.stat()
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert not load_images(root, image_size=8).from_cache
    victim.rename(victim.with_name("renamed.png"))
    assert not load_images(root, image_size=8).from_cache
    assert load_images(root, image_size=8).from_cache


def test_the_listing_digest_keys_like_the_stat_tuples(tmp_path):
    root = write_image_folder(tmp_path / "t", 2, per_class=3)
    listing = list_location(root)
    assert listing.stats[0][0] == f"0/{os.path.basename(listing.files[0])}"
    by_tuples = make_key(root, 8, 1, listing.stats)
    assert make_key(root, 8, 1, digest=listing.digest())[0] == by_tuples[0]
    assert make_key(root, 8, 1, digest=listing.digest()) == make_key(root, 8, 1, digest=list_location(root).digest())


def test_an_auto_colour_load_remembers_its_decision(tmp_path, _isolated_cache, monkeypatch):
    root = write_image_folder(tmp_path / "t", 2, per_class=3)
    first = load_images(root, image_size=8, color_mode="auto")
    probes = []
    monkeypatch.setattr(decode, "probe_colour", lambda path: probes.append(path))
    again = load_images(root, image_size=8, color_mode="auto")
    assert again.from_cache and again.channels == first.channels and probes == []
    rgb = load_images(root, image_size=8, color_mode="rgb")  # an explicit choice is no "auto" decision
    assert rgb.channels == 3 and not rgb.from_cache


def test_warm_up_pool_starts_the_workers_once(monkeypatch):
    pool.warm_up_pool(1)  # one core: nothing to start
    pool.warm_up_pool(2, wait=True)
    assert len(pool.process_pool(2)._processes) == 2  # noqa: SLF001
