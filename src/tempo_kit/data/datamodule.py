"""``TempoDataModule``: annotation files → decoded, segmented, collated batches for Lightning.

Recipe example (the ``data:`` block; ``batch_size``, ``seed`` and the tokenizer come from the
recipe's trainer, run and decoder)::

    data:
      train_files:
        - {path: data/llava_video.jsonl, media_root: data/videos, weight: 2.0}
        - {path: data/llava_image.json, media_root: data/images, weight: 1.0}
        - data/text.jsonl
      val_files: data/needle/val.jsonl
      media_root: data/needle        # default root for entries that do not give one
      max_frames: 128                # Table A, stage 2
      window: 4
      num_workers: 4

Several training files form a :class:`~tempo_kit.data.mixture.MixtureDataset` weighted by
``weight`` (default: each file's size). In multi-GPU runs Lightning swaps in its distributed
sampler. Bad samples follow ``on_error``; skipped ones are summarised at the end of each stage.

``shards:`` replaces ``train_files`` with folders that ``tempo-kit prepare`` wrote (local paths or
URLs, each ``{path, weight}`` or a plain location; see :mod:`tempo_kit.data.shards`): the same rows,
mixed, shuffled and resumed the same way, read from shards instead of the media folders.

Every loader draws from a :class:`~tempo_kit.data.sampler.ResumableSampler` (also across ranks, so
the recipe's trainer runs with ``use_distributed_sampler=False``), and the position inside the
training epoch is saved in every checkpoint: ``fit --resume`` continues with the next batch.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from tempo_kit.data.annotations import load_annotations
from tempo_kit.data.collate import TempoCollator
from tempo_kit.data.dataset import TempoDataset
from tempo_kit.data.mixture import MixtureDataset
from tempo_kit.data.sampler import ResumableSampler
from tempo_kit.data.shards import PAYLOADS, shard_entries
from tempo_kit.data.skips import SkipLog, check_on_error
from tempo_kit.errors import ConfigError, check_choice
from tempo_kit.video.decode import DEFAULT_RESIZE, RESIZE_MODES
from tempo_kit.video.options import DEFAULT_PREPROCESSING, DEFAULT_TIME_BASE
from tempo_kit.video.preprocessing import check_preprocessing
from tempo_kit.video.reading import Sampling
from tempo_kit.video.sampling import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_LONG_EDGE,
    DEFAULT_MIN_FRAMES,
    DEFAULT_SAMPLE_FPS,
)
from tempo_kit.video.segments import TIME_BASES, TRAIN_WINDOW

if TYPE_CHECKING:
    from tempo_kit.data.shard_dataset import ShardDataset

logger = logging.getLogger("tempo_kit.data")

FileSpec = str | Path | Mapping[str, Any]


def _fresh_skips_file(owner: object, path: str | Path | None) -> Path:
    """An empty skips file: ``path`` (emptied, its folder made) or a temporary one tied to ``owner``."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # this run's skips only; SkipLog creates it on the first skip
        return path
    handle, name = tempfile.mkstemp(prefix="tempo-kit-skips-", suffix=".jsonl")
    os.close(handle)
    weakref.finalize(owner, Path(name).unlink, missing_ok=True)  # also runs at exit; workers leave without running it
    return Path(name)


def _file_entries(files: FileSpec | Sequence[FileSpec] | None, media_root, where: str) -> list[dict]:
    """Normalise ``files`` to ``[{path, media_root, weight}]``."""
    if files is None:
        return []
    if isinstance(files, (str, Path, Mapping)):
        files = [files]
    entries = []
    for entry in files:
        if isinstance(entry, (str, Path)):
            entry = {"path": entry}
        elif isinstance(entry, Mapping):
            entry = dict(entry)
            unknown = set(entry) - {"path", "media_root", "weight"}
            if "path" not in entry or unknown:
                raise ConfigError(
                    f"data.{where}: an entry needs 'path' and may have 'media_root' and 'weight'; got keys {sorted(entry)}"
                )
        else:
            raise ConfigError(f"data.{where}: entries are paths or {{path, media_root, weight}}, got {entry!r}")
        entry.setdefault("media_root", media_root)
        entry.setdefault("weight", None)
        if not Path(entry["path"]).is_file():
            raise ConfigError(f"data.{where}: annotation file not found: {entry['path']}")
        entries.append(entry)
    return entries


class TempoDataModule(L.LightningDataModule):
    """Train / val / test data for Tempo.

    Args:
        train_files: training annotation files (paths or ``{path, media_root, weight}``
            entries); several are mixed by weight.
        val_files: validation annotation files (concatenated).
        test_files: test annotation files (concatenated).
        media_root: default root for the files' ``video``/``image`` paths (default: each
            annotation file's folder).
        tokenizer: the decoder's tokenizer, or the folder holding it (required; ``tempo-kit fit``
            passes the recipe decoder's). The data module never reads it off the model being
            trained: data and model meet only through the batches.
        batch_size: samples per device per step.
        num_workers: DataLoader worker processes.
        window: frames per segment (4 in training).
        eval_window: frames per segment for val/test (default ``window``).
        max_frames: cap on frames per video (Table A: 8 / 128 / 384 by stage; 1024 at inference).
        fps: sampling rate (2.0).
        min_frames: fewest frames per video (4).
        preprocessing: frame geometry: ``"released"`` (default; what the released weights saw,
            compatibility §1) or ``"qwen3_vl"`` (Hugging Face's Qwen3-VL geometry).
        resize: ``"pil"`` (exact released pixels), ``"decoder"`` (fast) or ``"torch"``.
        time_base: time tags from the real sampling rate (``"released"``) or the container.
        max_long_edge: frame resize (512 px).
        backend: video backend (``"decord"`` or ``"pyav"``).
        on_error: ``"skip"`` or ``"raise"`` for bad samples.
        seed: seeds the mixture and the training shuffle.
        max_samples: training items per epoch (default: all rows of all files).
        max_eval_samples: cap on val/test rows per file (first rows kept).
        val_mode: collation mode of validation batches (``"train"`` gives labels for a loss and
            keeps answers, what the training module's validation needs; or ``"eval"``).
        test_mode: collation mode of test batches.
        max_length: cut decoder prompts longer than this many tokens.
        skips_file: where skipped samples are recorded (JSON lines; DataLoader workers append to
            it). ``tempo-kit fit`` puts it in the run folder (``skips.jsonl``); ``None`` uses a
            temporary file that is removed when the data module is garbage-collected or the
            process exits.
        require_spans: keep only rows with ``relevant_spans`` (the router stage); the others are
            counted as skips, and a file left with none is an error.
        shards: prepared folders to train from instead of ``train_files`` (paths or URLs, or
            ``{path, weight}``); checked (complete, one prepare run, reachable) when built.
        shard_cache: local folder for remote shards (default ``~/.cache/tempo-kit/shards``).
        shard_payload: what ``tempo-kit prepare`` stores for media rows: ``"bytes"`` (the files as
            they are) or ``"frames"`` (sampled and resized with this recipe's geometry).
        features: stage-3 feature stores to train from instead of ``train_files`` (folders that
            ``tempo-kit prepare --features`` wrote, as ``shards``): no decoding, no SVLM; each is
            checked against ``features_model`` and this geometry when built
            (:mod:`tempo_kit.data.features`).
        features_model: the model folder a store must have been made with (``tempo-kit fit``
            passes ``run.init_from``).
        cache_clips: keep decoded clips in memory (:class:`~tempo_kit.data.dataset.TempoDataset`).
    """

    def __init__(
        self,
        train_files: FileSpec | Sequence[FileSpec] | None = None,
        val_files: FileSpec | Sequence[FileSpec] | None = None,
        test_files: FileSpec | Sequence[FileSpec] | None = None,
        media_root: str | None = None,
        tokenizer: Any = None,
        batch_size: int = 1,
        num_workers: int = 0,
        window: int = TRAIN_WINDOW,
        eval_window: int | None = None,
        max_frames: int = DEFAULT_MAX_FRAMES,
        fps: float = DEFAULT_SAMPLE_FPS,
        min_frames: int = DEFAULT_MIN_FRAMES,
        preprocessing: str = DEFAULT_PREPROCESSING,
        resize: str = DEFAULT_RESIZE,
        time_base: str = DEFAULT_TIME_BASE,
        max_long_edge: int | None = DEFAULT_MAX_LONG_EDGE,
        backend: str = "decord",
        on_error: str = "skip",
        seed: int = 0,
        max_samples: int | None = None,
        max_eval_samples: int | None = None,
        val_mode: str = "train",
        test_mode: str = "train",
        max_length: int | None = None,
        skips_file: str | Path | None = None,
        require_spans: bool = False,
        shards: Any = None,
        shard_cache: str | None = None,
        shard_payload: str = "bytes",
        features: Any = None,
        features_model: str | None = None,
        cache_clips: bool = False,
    ):
        super().__init__()
        check_on_error(on_error)
        self.cache_clips = cache_clips
        if batch_size < 1 or num_workers < 0:
            raise ConfigError(f"need batch_size ≥ 1 and num_workers ≥ 0, got {batch_size}, {num_workers}")
        self.train_entries = _file_entries(train_files, media_root, "train_files")
        self.val_entries = _file_entries(val_files, media_root, "val_files")
        self.test_entries = _file_entries(test_files, media_root, "test_files")
        if tokenizer is None:
            raise ConfigError(
                "TempoDataModule needs tokenizer=: the decoder's tokenizer, or the folder holding it "
                "(e.g. the LLM checkpoint folder)"
            )
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.num_workers = num_workers
        #: how training videos are read; validation and test read them with ``eval_window``
        self.sampling = Sampling.training(
            window=window,
            max_frames=max_frames,
            fps=fps,
            min_frames=min_frames,
            preprocessing=check_preprocessing(preprocessing, "data.preprocessing"),
            resize=check_choice(resize, RESIZE_MODES, "data.resize"),
            time_base=check_choice(time_base, TIME_BASES, "data.time_base"),
            max_long_edge=max_long_edge,
            backend=backend,
        )
        self.eval_sampling = dataclasses.replace(self.sampling, window=eval_window or window)
        self.on_error = on_error
        self.seed = seed
        self.max_samples = max_samples
        self.max_eval_samples = max_eval_samples
        self.modes = {"val": val_mode, "test": test_mode}
        self.max_length = max_length
        self.require_spans = require_spans
        self.shard_cache = shard_cache
        self.skip_log = SkipLog(_fresh_skips_file(self, skips_file))
        self.datasets: dict[str, Dataset] = {}
        self._resume_at: tuple[int, int] = (0, 0)  # (epoch, samples of it trained, all ranks) from a checkpoint
        self.shard_payload = check_choice(shard_payload, PAYLOADS, "data.shard_payload")
        self.shard_entries = shard_entries(shards)
        self.features_model = features_model
        stores = shard_entries(features)
        sources = [name for name, given in (("shards", self.shard_entries), ("features", stores),
                                            ("train_files", self.train_entries)) if given]  # fmt: skip
        if len(sources) > 1:
            both, other = ("both", "the other") if len(sources) == 2 else ("all", "the others")
            raise ConfigError(f"data.{' and data.'.join(sources)} are {both} set: train from one (remove {other})")
        self.shard_parts = [self._shard_dataset(entry) for entry in self.shard_entries]  # checked before training
        if stores:
            self.shard_entries = stores
            self.shard_parts = [self._feature_dataset(entry) for entry in stores]

    def _feature_dataset(self, entry: dict):
        from tempo_kit.data.feature_dataset import FeatureDataset
        from tempo_kit.data.features import store_geometry

        sampling = self.sampling
        geometry = store_geometry(sampling.load_arguments(), sampling.window, sampling.time_base)
        return FeatureDataset(
            entry["path"], sampling=sampling, model=self.features_model, geometry=geometry,
            cache=self.shard_cache, on_error=self.on_error, skip_log=self.skip_log,
        )  # fmt: skip

    def _shard_dataset(self, entry: dict) -> ShardDataset:
        from tempo_kit.data.shard_dataset import ShardDataset

        part = ShardDataset(
            entry["path"], sampling=self.sampling, cache=self.shard_cache, on_error=self.on_error, skip_log=self.skip_log
        )
        if self.require_spans:
            part.records = self._with_spans(part.records, entry["path"])
        return part

    # ------------------------------------------------------------------ building
    def _dataset(self, entry: dict, sampling: Sampling, require_answer: bool) -> TempoDataset:
        root = entry["media_root"] if entry["media_root"] is not None else Path(entry["path"]).parent
        before = len(self.skip_log.records)
        records = load_annotations(entry["path"], self.on_error, self.skip_log)
        if not records:  # found here, per file, not as an empty mixture or dataset later
            skipped = self.skip_log.records[before:]
            why = (
                f"all {len(skipped)} rows are invalid, e.g. {skipped[0].reason}"
                if skipped
                else "the file holds no rows"
            )
            raise ConfigError(f"{entry['path']}: no usable row was found: {why}; fix the file or drop it from the recipe")
        if self.require_spans:
            records = self._with_spans(records, entry["path"])
        return TempoDataset(
            records,
            root,
            sampling=sampling,
            on_error=self.on_error,
            skip_log=self.skip_log,
            require_answer=require_answer,
            cache_clips=self.cache_clips,
        )

    def _with_spans(self, records: list, path) -> list:
        """Rows that carry ``relevant_spans``; the rest are logged as skips."""
        kept = []
        for record in records:
            if record.relevant_spans is None or record.kind != "video":
                self.skip_log.add(record.where, record.media, "no relevant_spans: the router stage needs them")
            else:
                kept.append(record)
        if not kept:
            raise ConfigError(
                f"{path}: none of its {len(records)} rows is a video row with relevant_spans, which "
                "data.require_spans=true (the router stage) needs; add them (tempo-kit make-synthetic "
                "writes them; tempo-kit convert-grounding converts grounding datasets)"
            )
        return kept

    def _eval_dataset(self, entries: list[dict], split: str) -> Dataset | None:
        if not entries:
            return None
        parts = [self._dataset(e, self.eval_sampling, self.modes[split] == "train") for e in entries]
        if self.max_eval_samples is not None:
            for part in parts:
                part.records = part.records[: self.max_eval_samples]
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def _resolve_tokenizer(self):
        if isinstance(self.tokenizer, (str, Path)):
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(self.tokenizer))
        return self.tokenizer

    def setup(self, stage: str | None = None) -> None:
        self._resolve_tokenizer()
        entries = self.shard_entries or self.train_entries
        if stage in (None, "fit") and entries and "train" not in self.datasets:
            parts = self.shard_parts or [self._dataset(e, self.sampling, True) for e in self.train_entries]
            weights = [e["weight"] if e["weight"] is not None else len(p) for e, p in zip(entries, parts)]
            self.datasets["train"] = MixtureDataset(parts, weights, self.max_samples, self.seed)
        for split, stages in (("val", (None, "fit", "validate")), ("test", (None, "test"))):
            if stage in stages and split not in self.datasets:
                entries = self.val_entries if split == "val" else self.test_entries
                if (dataset := self._eval_dataset(entries, split)) is not None:
                    self.datasets[split] = dataset

    def teardown(self, stage: str | None = None) -> None:
        summary = self.skip_log.summary()
        (logger.warning if len(self.skip_log) else logger.info)("data (%s): %s", stage or "all", summary)
        self.last_summary = summary

    # ------------------------------------------------------------------ resuming
    def state_dict(self) -> dict[str, int]:
        """Saved in every Lightning checkpoint: the epoch and the batches of it already trained on."""
        trainer = self.trainer
        if trainer is None:
            return {}
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        return {
            "train_epoch": int(trainer.current_epoch),
            "train_batches": int(progress.processed),
            "train_world_size": int(trainer.world_size),
        }

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Restore the training position: the next training loader starts after the samples those
        batches held on all ranks (any world size; see :mod:`~tempo_kit.data.sampler`)."""
        if "train_epoch" in state:
            # a checkpoint without it predates the field: it is resumed on its own world size
            world = int(state.get("train_world_size", self.trainer.world_size if self.trainer else 1))
            self._resume_at = (int(state["train_epoch"]), int(state["train_batches"]) * self.batch_size * world)

    # ------------------------------------------------------------------ loaders
    def _loader(self, split: str, mode: str, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise ConfigError(f"no {split} data: set data.{split}_files in the recipe")
        epoch, samples = self._resume_at if split == "train" else (0, 0)
        sampler = ResumableSampler(len(self.datasets[split]), self.seed, shuffle, start_epoch=epoch, start=samples)
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=TempoCollator(self.tokenizer, mode=mode, max_length=self.max_length),
            generator=generator,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", "train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if "val" not in self.datasets:
            return []  # no validation files: Lightning skips the validation loop
        return self._loader("val", self.modes["val"], shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.modes["test"], shuffle=False)
