"""Artefacts many jobs share under one data root: built once under a lock, never read half-written, and a killed
builder leaves nothing that blocks or fools the next job."""

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from facemix.data.cache import build_cache
from facemix.data.demo import demo_plan, write_demo
from facemix.data.health import ScanCache, scan_images
from tests.helpers import make_imagefolder

FORK = multiprocessing.get_context("fork")


def _together(target, args_per_process):
    """Start one process per argument tuple at the same moment; return what each put on the queue."""
    queue, start = FORK.Queue(), FORK.Event()

    def run(args):
        start.wait()
        queue.put(target(*args))

    procs = [FORK.Process(target=run, args=(a,)) for a in args_per_process]
    for p in procs:
        p.start()
    start.set()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def _cache(paths, cache_dir):
    images = build_cache(paths, 16, cache_dir, workers=1, progress=False)
    return images.decoded, images.array_path.name, float(sum(images[p].sum() for p in paths))


def test_four_jobs_build_the_image_cache_once_and_read_the_same_pixels(tmp_path):
    paths = sorted(str(p) for p in make_imagefolder(tmp_path / "imgs", {"a": 20, "b": 20}).rglob("*.png"))
    results = _together(_cache, [(paths, tmp_path / "cache")] * 4)
    assert sorted(r[0] for r in results) == [0, 0, 0, len(paths)]  # one decoded everything, three reused it
    assert len({r[1] for r in results}) == 1 and len({r[2] for r in results}) == 1
    assert not list((tmp_path / "cache").rglob("*.partial-*"))


def _scan(paths, cache_dir):
    calls = []
    import facemix.data.health as health

    original = health.inspect_image
    health.inspect_image = lambda p: calls.append(p) or original(p)
    infos = scan_images(paths, ScanCache(cache_dir), workers=1, progress=False)
    return len(calls), sorted(i.sha1 for i in infos.values())


def test_four_jobs_scan_once(tmp_path):
    paths = sorted(make_imagefolder(tmp_path / "imgs", {"a": 15, "b": 15}).rglob("*.png"))
    results = _together(_scan, [(paths, tmp_path / "scan_cache")] * 4)
    assert sorted(r[0] for r in results) == [0, 0, 0, len(paths)]
    assert len({tuple(r[1]) for r in results}) == 1


def _demo(root):
    write_demo(root, scale=0.01, seed=3, progress=False)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))


def test_four_jobs_draw_the_demo_once(tmp_path):
    results = _together(_demo, [(tmp_path / "demo",)] * 4)
    assert len({tuple(r) for r in results}) == 1 and len(results[0]) == len(demo_plan(0.01))
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


@pytest.mark.slow  # seconds, not milliseconds: in `make test`, not `make test-fast`
def test_a_killed_builder_blocks_nobody_and_the_next_job_rebuilds(tmp_path):
    root = tmp_path / "demo"
    builder = FORK.Process(target=write_demo, args=(root, 0.05, 0, False))
    builder.start()
    deadline = time.monotonic() + 60
    while not any(p.is_dir() for p in tmp_path.glob("demo.partial-*")):
        assert time.monotonic() < deadline and builder.is_alive()
        time.sleep(0.05)
    time.sleep(0.5)  # mid-draw
    os.kill(builder.pid, signal.SIGKILL)
    builder.join()
    assert not root.exists()  # nothing half-drawn was published

    started = time.monotonic()
    write_demo(root, 0.05, 0, progress=False)  # the dead builder's lock went with it
    assert time.monotonic() - started < 120
    assert len(list(root.rglob("*.jpg"))) == len(demo_plan(0.05))
    assert not list(tmp_path.glob("demo.partial-*"))  # its leftovers were cleared


def test_a_changed_file_is_redecoded_into_a_new_array_while_the_old_one_stays_readable(tmp_path):
    root = make_imagefolder(tmp_path / "imgs", {"a": 4})
    paths = sorted(str(p) for p in root.rglob("*.png"))
    first = build_cache(paths, 16, tmp_path / "cache", progress=False)
    before = np.array(first[paths[0]])
    import cv2

    cv2.imwrite(paths[0], np.full((30, 30, 3), 250, np.uint8))
    os.utime(paths[0], ns=(1, 10**18))
    second = build_cache(paths, 16, tmp_path / "cache", progress=False)
    assert second.decoded == 1 and second.array_path != first.array_path
    assert np.array_equal(first[paths[0]], before)  # a reader of the first build is not disturbed
    assert (second[paths[0]] == 250).all()
