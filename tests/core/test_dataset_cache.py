"""The decoded-array cache key: any change to a file's name, size or modification time misses."""

import os
import shutil

import numpy as np
import pytest

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


def _pixel_sums(images) -> dict[str, float]:
    return {os.path.basename(f): float(x.sum()) for f, x in zip(images.files, images.x)}


def test_a_rewritten_file_of_the_same_size_is_reloaded_with_its_new_pixels(tmp_path, _isolated_cache):
    from PIL import Image

    root = write_image_folder(tmp_path / "t", 2, per_class=3, size=8)
    first = load_images(root, image_size=8, channels=1)
    victim = sorted((root / "0").iterdir())[0]
    stat = victim.stat()
    Image.fromarray(np.full((8, 8), 200, dtype=np.uint8)).save(victim)  # different content
    assert victim.stat().st_size < stat.st_size  # a flat image compresses to less
    with open(victim, "ab") as f:  # PNG ignores trailing bytes: pad to the old size
        f.write(b"\0" * (stat.st_size - victim.stat().st_size))
    assert victim.stat().st_size == stat.st_size
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = load_images(root, image_size=8, channels=1)
    assert not again.from_cache
    assert _pixel_sums(again)[victim.name] == pytest.approx(64 * 200 / 255, rel=1e-5)
    assert _pixel_sums(again)[victim.name] != _pixel_sums(first)[victim.name]
    assert load_images(root, image_size=8, channels=1).from_cache


def test_an_added_or_removed_file_misses_the_cache(tmp_path, _isolated_cache):
    root = write_image_folder(tmp_path / "t", 2, per_class=3)
    assert len(load_images(root, image_size=8)) == 6
    extra = root / "1" / "zz_new.png"
    shutil.copy(sorted((root / "1").iterdir())[0], extra)
    os.utime(extra, ns=(0, sorted((root / "1").iterdir())[0].stat().st_mtime_ns))  # even with a copied mtime
    added = load_images(root, image_size=8)
    assert not added.from_cache and len(added) == 7 and str(extra) in added.files
    assert load_images(root, image_size=8).from_cache
    extra.unlink()
    removed = load_images(root, image_size=8)
    assert not removed.from_cache and len(removed) == 6 and str(extra) not in removed.files


def test_files_the_fast_listing_cannot_take_are_skipped_with_their_reasons(tmp_path, _isolated_cache):
    root = write_image_folder(tmp_path / "t", 2, per_class=3)
    (root / "0" / "empty.png").write_bytes(b"")
    (root / "0" / "folder.png").mkdir()
    (root / "1" / "notes.txt").write_text("x")
    (root / "1" / ".hidden.png").write_bytes(b"x")
    (root / "1" / "gone.png").symlink_to(tmp_path / "missing.png")
    listing = list_location(root)
    assert [os.path.basename(f) for f in listing.files] == ["img_000.png", "img_001.png", "img_002.png"] * 2
    assert listing.files[0] == os.path.join(root, "0", "img_000.png") and listing.names[3] == "1/img_000.png"
    reasons = {os.path.basename(s.path): s.reason for s in listing.skipped}
    assert reasons == {
        "empty.png": "empty file (0 bytes)",
        "folder.png": "a folder (sub-folders of a class are not read)",
        "notes.txt": "not an image file type (.txt)",
        "gone.png": "broken symbolic link (its target is missing)",
    }
    assert listing.sizes.tolist() == [os.path.getsize(f) for f in listing.files]
    assert listing.mtimes.tolist() == [os.stat(f).st_mtime_ns for f in listing.files]
    images = load_images(root, image_size=8)
    (root / "0" / "empty.png").write_bytes((root / "0" / "img_000.png").read_bytes())  # now a usable image
    assert not load_images(root, image_size=8).from_cache and len(images) == 6
    assert len(load_images(root, image_size=8)) == 7
