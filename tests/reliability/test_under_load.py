"""Memory stays proportional to the data: loading does not blow up, a tuning search does not grow."""

import resource
import subprocess
import sys
import textwrap
import tracemalloc

import pytest

from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.events import FoldEnd
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import tune

from tests_support import TINY_HYPER, class_ordered_set, write_image_folder


def test_loading_peaks_below_twice_the_decoded_array(tmp_path):
    root = write_image_folder(tmp_path / "t", 10, per_class=300, size=28)
    tracemalloc.start()
    images = load_images(root, image_size=28, cache=False, workers=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    decoded = images.x.nbytes  # 3000 x 28 x 28 x 1 float32 = 9.4 MB
    assert len(images) == 3000
    assert peak < 2 * decoded, f"peak {peak / 2**20:.1f} MiB for a {decoded / 2**20:.1f} MiB array"


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def test_a_twelve_fit_search_does_not_grow_memory(tmp_path):
    hyper = HyperParams.from_dict({**TINY_HYPER, "epochs": 1, "num_units": [16, 32], "num_filters": [4, 8]})
    rss = []

    def emit(event):
        if isinstance(event, FoldEnd):
            rss.append(_rss_mib())

    result = tune(class_ordered_set(per_class=15), hyper, SearchOptions(cv=3), emit=emit)
    assert len(result.rows) == 12 and len(rss) == 12
    growth = (rss[-1] - rss[0]) / rss[0]
    assert growth <= 0.10, f"RSS {rss[0]:.0f} -> {rss[-1]:.0f} MiB ({growth:.1%})"


@pytest.mark.slow
def test_twenty_thousand_images_peak_rss(tmp_path):
    """Run by hand (pytest -m slow): peak RSS of a process loading 20,000 28x28 PNGs."""
    root = write_image_folder(tmp_path / "big", 10, per_class=2000, size=28)
    code = textwrap.dedent(f"""
        import resource, numpy as np
        from cnn_tui.core.data.dataset import load_images
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        images = load_images({str(root)!r}, image_size=28, cache=False)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(len(images), images.x.nbytes, base * 1024, peak * 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    count, array_bytes, base, peak = map(int, out)
    print(f"20k images: array {array_bytes / 2**20:.1f} MiB, RSS before {base / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB")
    assert count == 20000
    assert peak - base < 3 * array_bytes
