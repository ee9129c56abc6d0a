"""Bad video input: every kind gives a MediaError naming the file and the reason."""

from __future__ import annotations

import math
import os

import av
import pytest

from tempo_kit.data.synthetic import read_counter, write_counter_video
from tempo_kit.errors import ConfigError, MediaError
from tempo_kit.video import VIDEO_BACKENDS, VideoSource, load_video, register_backend

BACKEND_NAMES = ["decord", "pyav"]
H264_SHORT_GOP = {"preset": "veryfast", "threads": "1", "g": "10"}


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    files = {}
    (root / "garbage.mp4").write_bytes(os.urandom(4000))
    files["garbage"] = root / "garbage.mp4"
    (root / "empty.mp4").write_bytes(b"")
    files["empty"] = root / "empty.mp4"
    with av.open(str(root / "no_frames.mp4"), "w") as container:  # a container with no video frames
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    files["no_frames"] = root / "no_frames.mp4"
    good = write_counter_video(root / "good.mp4", 100, 25, (96, 128), options=H264_SHORT_GOP)
    data = good.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])  # index (moov) at the end is lost
    files["truncated"] = root / "truncated.mp4"
    faststart = write_counter_video(
        root / "faststart.mp4", 100, 25, (96, 128), options={**H264_SHORT_GOP, "movflags": "faststart"}
    )
    data = bytearray(faststart.read_bytes())
    (root / "truncated_faststart.mp4").write_bytes(bytes(data[: len(data) // 2]))
    files["truncated_faststart"] = root / "truncated_faststart.mp4"
    middle = len(data) // 2
    data[middle : middle + 3000] = os.urandom(3000)  # undecodable packets in the middle
    (root / "corrupt_middle.mp4").write_bytes(bytes(data))
    files["corrupt_middle"] = root / "corrupt_middle.mp4"
    files["absurd_fps"] = write_counter_video(root / "absurd_fps.mp4", 10, 5000, (64, 64))
    return files


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_missing_file(tmp_path, backend):
    with pytest.raises(MediaError, match=r"not found: .*nope\.mp4"):
        load_video(tmp_path / "nope.mp4", backend=backend)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize(
    "kind, reason",
    [
        ("garbage", "cannot open video"),
        ("empty", "cannot open video"),
        ("no_frames", "no video stream|cannot open video|0 frames"),
        ("truncated", "cannot open video"),
        ("truncated_faststart", "cannot open video|truncated|failed to decode"),
        ("corrupt_middle", "failed to decode"),
        ("absurd_fps", r"fps=5000\.0"),
    ],
)
def test_bad_files_raise_media_error_naming_file(bad, backend, kind, reason):
    path = bad[kind]
    with pytest.raises(MediaError, match=reason) as info:
        load_video(path, backend=backend, fps=25.0)
    assert path.name in str(info.value)


class FakeMetadataSource(VideoSource):
    """A real file whose metadata is overridden: how a broken container header looks to the kit."""

    def __init__(self, path, num_frames, fps):
        self.path, self.num_frames, self.fps, self.height, self.width = path, num_frames, fps, 64, 64

    def iter_chunks(self, indices, size, chunk_size):  # never reached: metadata is rejected first
        raise AssertionError("decoding should not start")


@pytest.mark.parametrize(
    "num_frames, fps, match",
    [(0, 25.0, "0 frames"), (10, 0.0, "fps=0.0"), (10, math.nan, "fps=nan"), (10, 1e9, "fps=1000000000.0")],
)
def test_bad_metadata(tmp_path, num_frames, fps, match):
    path = write_counter_video(tmp_path / "v.mp4", 4, 25, (64, 64))
    name = f"fake_{num_frames}_{fps}"
    register_backend(name)(lambda p, output_size=None: FakeMetadataSource(p, num_frames, fps))
    with pytest.raises(MediaError, match=match) as info:
        load_video(path, backend=name)
    assert "v.mp4" in str(info.value)
    assert name in VIDEO_BACKENDS.list("fake_*")


def test_unknown_backend(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown video backend 'pyavv' \(did you mean 'pyav'\?\)\. Known: "):
        load_video(tmp_path / "x.mp4", backend="pyavv")


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("resize", ["decoder", "pil"])
def test_huge_resolution_is_resized_in_bounded_chunks(tmp_path_factory, backend, resize):
    root = tmp_path_factory.getbasetemp() / "uhd"
    path = root / "uhd.mp4"
    if not path.exists():
        write_counter_video(path, 6, 2, (2160, 3840))
    clip = load_video(path, backend=backend, resize=resize, chunk_bytes=3 * 2160 * 3840 * 3)
    assert tuple(clip.frames.shape) == (6, 256, 512, 3)  # 4K 16:9 → 512×288 → 512×256 (released)
    assert [read_counter(f.numpy()) for f in clip.frames] == clip.indices.tolist()


def test_very_low_fps_repeats_frames(tmp_path):
    from fractions import Fraction

    path = write_counter_video(tmp_path / "slow.mp4", 3, Fraction(1, 10), (64, 64))  # 30 s, 3 frames
    clip = load_video(path)
    assert clip.fps == pytest.approx(0.1) and len(clip) == 60
    assert clip.timestamps[-1].item() == pytest.approx(20.0)
    assert [read_counter(f.numpy()) for f in clip.frames] == clip.indices.tolist()
