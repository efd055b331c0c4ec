"""The producer's image cache: replays and later epochs served without decoding again."""
from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

import numpy as np
import pytest

from producer import batch, cli, imaging
from producer.batch import ParallelBatch, build_batch, load_image
from producer.image_cache import DEFAULT_IMAGE_CACHE_BYTES, ImageCache
from producer.running import running_server
from producer.server_config import ServerConfig
from producer.stream import StreamSpec
from test_producer_bounded import read_batches

SIDE = 48


@pytest.fixture(scope="module")
def data(synthetic_dataset) -> Path:
    return synthetic_dataset(4)


def make_spec(root: Path, endless: bool = False, augment: int = 0) -> StreamSpec:
    return StreamSpec.from_directory(root, "train", batch_size=2, endless=endless, augment=augment,
                                     preprocessing=imaging.Preprocessing(image_size=(SIDE, SIDE)))


def config(**kw) -> ServerConfig:
    # No read ahead: every batch is built when it is asked for, so the counts are exact.
    return ServerConfig(**{"port": 0, "progress": False, "workers": 2, "read_ahead": 0, **kw})


def counting_decodes(monkeypatch) -> list:
    calls = []
    pixels = batch._pixels

    def counted(file, spec, data):
        calls.append(file.id)
        return pixels(file, spec, data)

    monkeypatch.setattr(batch, "_pixels", counted)
    return calls


def test_images_are_admitted_until_the_budget_is_full_and_then_kept():
    image = np.zeros((4, 4, 1), np.uint8)
    cache = ImageCache(limit_bytes=2 * image.nbytes)
    for n in range(3):
        cache.put((f"{n}.png", "d"), image.copy())
    assert len(cache) == 2 and cache.nbytes == 2 * image.nbytes
    assert cache.get(("0.png", "d")) is not None and cache.get(("1.png", "d")) is not None
    assert cache.get(("2.png", "d")) is None  # no room when it came: the first two stay
    assert (cache.hits, cache.misses) == (2, 1)
    assert "2 images" in cache.describe()


def test_a_cached_image_is_read_only_and_keyed_by_content():
    cache = ImageCache()
    kept = cache.put(("a.png", "digest-1"), np.ones((2, 2, 1), np.uint8))
    assert not kept.flags.writeable
    with pytest.raises(ValueError):
        kept[0, 0, 0] = 7
    assert cache.get(("a.png", "digest-2")) is None  # the same name with other bytes is another image


def test_a_zero_budget_keeps_nothing():
    cache = ImageCache(0)
    cache.put(("a.png", "d"), np.ones((2, 2, 1), np.uint8))
    assert len(cache) == 0 and cache.get(("a.png", "d")) is None


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_a_bad_budget_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="image cache's budget"):
        ImageCache(bad)
    with pytest.raises(ValueError):
        ServerConfig(image_cache_bytes=-1)


def test_load_image_decodes_a_file_once_with_a_cache(data, monkeypatch):
    spec = make_spec(data)
    calls = counting_decodes(monkeypatch)
    cache = ImageCache()
    file = spec.files[0]
    first = load_image(file, spec, cache)
    again = load_image(file, spec, cache)
    assert calls == [file.id]
    assert again is first and np.array_equal(again, load_image(file, spec))


def test_a_skipped_file_is_not_cached(tmp_path):
    root = tmp_path / "data"
    (root / "train" / "normal").mkdir(parents=True)
    good = np.full((20, 20), 100, np.uint8)
    import cv2

    cv2.imwrite(str(root / "train" / "normal" / "a.png"), good)
    (root / "train" / "normal" / "b.png").write_bytes(b"not a png")
    spec = make_spec(root)
    cache = ImageCache()
    results = [load_image(f, spec, cache) for f in spec.files]
    assert isinstance(results[1], imaging.ImageSkipped)
    assert len(cache) == 1


def test_a_file_changed_after_it_was_cached_is_still_reported(tmp_path):
    """The cache saves the decode only: the bytes are read and checked every time."""
    import cv2

    from producer import reading

    root = tmp_path / "data"
    (root / "train" / "normal").mkdir(parents=True)
    path = root / "train" / "normal" / "a.png"
    cv2.imwrite(str(path), np.full((20, 20), 100, np.uint8))
    spec = make_spec(root)
    cache = ImageCache()
    assert isinstance(load_image(spec.files[0], spec, cache), np.ndarray)
    cv2.imwrite(str(path), np.full((20, 20), 200, np.uint8))
    changed = load_image(spec.files[0], spec, cache)
    assert isinstance(changed, reading.ContentChanged)
    assert cache.hits == 0


@pytest.mark.parametrize("augment", [0, 2])
def test_batches_built_through_the_cache_have_the_same_bytes(data, augment):
    spec = make_spec(data, augment=augment)
    cache = ImageCache()

    async def build_all():
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            frames = []
            for _ in range(2):  # the second pass is served from the cache
                jobs = [ParallelBatch(spec, s, pool, loop, cache=cache) for s in range(spec.total_batches)]
                frames.append([(await job.future).frame for job in jobs])
            return frames

    first, second = asyncio.run(build_all())
    expected = [build_batch(spec, s).frame for s in range(spec.total_batches)]
    assert first == expected and second == expected
    assert cache.hits == len(spec.files)


def test_a_replay_and_the_next_epoch_decode_nothing(data, monkeypatch):
    spec = make_spec(data, endless=True)
    n = spec.batches_per_epoch
    calls = counting_decodes(monkeypatch)
    with running_server(spec, config()) as server:
        epoch0 = read_batches(server.port, n, from_seq=0)
        replay = read_batches(server.port, n, from_seq=0)
        epoch1 = read_batches(server.port, n, from_seq=n)
        assert server.images.hits == 2 * len(spec.files)
    assert sorted(calls) == sorted(f.id for f in spec.files)  # each file decoded once
    assert replay == epoch0
    assert epoch1 == [build_batch(spec, s).frame for s in range(n, 2 * n)]


def test_without_the_cache_every_read_decodes(data, monkeypatch):
    spec = make_spec(data)
    calls = counting_decodes(monkeypatch)
    with running_server(spec, config(image_cache_bytes=0)) as server:
        read_batches(server.port, 2, from_seq=0)
        read_batches(server.port, 2, from_seq=0)
        assert len(server.images) == 0
    assert len(calls) == 2 * 2 * spec.batch_size


def test_the_command_line_sets_the_budget(data):
    ap = cli.build_parser()
    assert ap.parse_args(["-d", str(data)]).image_cache_bytes == DEFAULT_IMAGE_CACHE_BYTES
    assert ap.parse_args(["-d", str(data), "--image-cache-bytes", "0"]).image_cache_bytes == 0
    with pytest.raises(SystemExit):
        ap.parse_args(["-d", str(data), "--image-cache-bytes", "-5"])
