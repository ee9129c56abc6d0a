"""The ``"torchcodec"`` video backend: PyTorch's own decoder (FFmpeg underneath), on CPU or CUDA.

torchcodec is the maintained successor to decord in the PyTorch ecosystem. Its wheels link
against one torch build and one of FFmpeg's shared-library generations (4 to 9): the wheels on
the package index load only beside a **CUDA build of torch** (they need ``libc10_cuda.so``), and
only where FFmpeg's shared libraries are installed (``apt install libavcodec59 libavformat59
libavutil57 libswscale6 libavdevice59 libavfilter8 libswresample4`` on Debian 12). Where either is
missing, asking for ``"torchcodec"`` decodes with the next backend instead and says so in one
line (:func:`usable_backend`), never a traceback. ``"torchcodec_cuda"`` decodes on the GPU.

Pixels: torchcodec's full-resolution RGB frames are FFmpeg's swscale conversion, the same as
decord's, so the exact path (``resize="pil"``) gives the released pixels bit for bit through it
(``tests/test_video_torchcodec.py``). Its in-decoder resize (``resize="decoder"``) is bilinear with
antialiasing (torchcodec offers no other filter), where decord and PyAV use bicubic: the fast path's
pixels differ by backend.
"""

from __future__ import annotations

import functools

import numpy as np

from tempo_kit.errors import MediaError
from tempo_kit.video.probe import _probe_size
from tempo_kit.video.source import (
    SizeRule,
    VideoSource,
    _check_indices,
    _reason,
    register_backend,
)

#: what to install for the backend to load, said in the one-line fallback
TORCHCODEC_NEEDS = (
    "torchcodec needs a CUDA build of torch and FFmpeg's shared libraries (4 to 9); "
    "see the video decoding page of the docs"
)


@functools.cache
def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here (one line), or ``None`` when it loads.

    Importing torchcodec loads its C++ libraries; a wheel built for another torch or without
    FFmpeg raises ``RuntimeError``/``OSError`` with a page of loader attempts: keep the first line.
    """
    import importlib.util

    if importlib.util.find_spec("torchcodec") is None:
        return "torchcodec is not installed"
    try:
        import torchcodec.decoders  # noqa: F401 - the import is the check
    except Exception as error:  # a broken native load raises several types; all mean "unusable"
        return f"torchcodec cannot load ({_reason(error)})"
    return None


def usable_backend(backend: str) -> str:
    """``backend`` where it can decode here, else the next one down, said once in one line:
    ``"torchcodec_cuda"`` → ``"torchcodec"`` (no CUDA device) → ``"decord"`` (torchcodec cannot load)."""
    from tempo_kit.video.backends import _note_once

    if backend == "torchcodec_cuda":
        import torch

        if torch.cuda.is_available():
            return backend
        _note_once("no CUDA device for torchcodec_cuda: decoding with torchcodec on the CPU instead")
        backend = "torchcodec"
    if problem := torchcodec_problem():
        _note_once(f"{problem}: decoding with decord instead ({TORCHCODEC_NEEDS})")
        return "decord"
    return backend


@register_backend("torchcodec")
class TorchcodecSource(VideoSource):
    """torchcodec ``VideoDecoder`` in exact seek mode (frame ``i`` is the ``i``-th frame in
    presentation order, as PyAV counts), frames as ``[N, H, W, 3]`` uint8.

    Args:
        path: the video file.
        output_size: the size rule frames will be read at; the decoder is opened already
            resizing to it (torchcodec's ``Resize``: bilinear, antialiased).
        device: ``"cpu"`` or ``"cuda"`` (NVDEC); frames come back to host memory as numpy.
        num_threads: FFmpeg decoding threads (0: FFmpeg picks).
    """

    def __init__(
        self, path: str, output_size: SizeRule | None = None, device: str = "cpu", num_threads: int = 0
    ):
        self.path, self._device, self._threads = path, device, num_threads
        native = _probe_size(path)
        target = tuple(output_size(*native)) if (output_size and native) else None
        self._decoders: dict[tuple[int, int] | None, object] = {}
        decoder = self._decoder_for(None if target == native else target)
        metadata = decoder.metadata
        self.num_frames = int(metadata.num_frames or 0)
        # the header's rate (FFmpeg's avg_frame_rate), which decord and PyAV report: torchcodec's own
        # average_fps is frames / scanned length, which differs on variable-frame-rate files and
        # would break the released index/fps reading there
        fps = getattr(metadata, "average_fps_from_header", None) or metadata.average_fps
        self.fps = float(fps) if fps else float("nan")
        self.height, self.width = native or (int(metadata.height), int(metadata.width))

    def _decoder_for(self, size: tuple[int, int] | None):
        """One decoder per output size (a decoder's transforms are fixed when it opens)."""
        if size is not None and size == (getattr(self, "height", None), getattr(self, "width", None)):
            size = None
        if size not in self._decoders:
            from torchcodec.decoders import VideoDecoder
            from torchcodec.transforms import Resize

            self._decoders[size] = VideoDecoder(
                self.path,
                dimension_order="NHWC",
                seek_mode="exact",
                num_ffmpeg_threads=self._threads,
                device=self._device,
                transforms=None if size is None else [Resize(size=size)],
            )
        return self._decoders[size]

    def iter_chunks(self, indices, size, chunk_size):
        _check_indices(self, indices)
        try:
            decoder = self._decoder_for(size)
            for start in range(0, len(indices), chunk_size):
                chunk = [int(i) for i in indices[start : start + chunk_size]]
                yield np.ascontiguousarray(decoder.get_frames_at(indices=chunk).data.cpu().numpy())
        except MediaError:
            raise
        except Exception as error:
            raise MediaError(f"torchcodec failed to decode {self.path}: {_reason(error)}") from error

    def close(self) -> None:
        self._decoders.clear()


@register_backend("torchcodec_cuda")
def torchcodec_cuda(path: str, output_size: SizeRule | None = None) -> TorchcodecSource:
    """torchcodec decoding on the GPU (NVDEC); frames come back to host memory."""
    return TorchcodecSource(path, output_size, device="cuda")
