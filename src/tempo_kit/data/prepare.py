"""Annotation files → prepared shard folders (:mod:`tempo_kit.data.shards`), in parallel, resumable.

Each annotation file becomes one folder. Its rows are cut into fixed runs of ``shard_rows`` rows
(shard ``k`` holds rows ``k·n … k·n + n − 1``), so a shard's content depends on its rows alone:
shards are written by separate processes in any order, each atomically, and a shard's sidecar
JSON is written after its tar. A rerun after a kill keeps every shard that has its sidecar and
writes the others: no duplicates, no gaps, and the same bytes as an uninterrupted run. The
``index.json`` comes last, with the counts and every skipped row's reason.

Rows are checked exactly as training reads them (:class:`~tempo_kit.data.dataset.TempoDataset`:
the row's shape, the answer turn, the media decoding, the spans against the duration): a row that
training would skip is skipped here, and counted with the same reason.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from tempo_kit.atomic import remove_partials, write_json
from tempo_kit.data.annotations import AnnotationError, parse_row
from tempo_kit.data.dataset import TempoDataset
from tempo_kit.data.feature_prepare import feature_payload
from tempo_kit.data.features import FEATURES_PAYLOAD, store_geometry
from tempo_kit.data.rows import read_rows
from tempo_kit.data.shard_dataset import clip_meta
from tempo_kit.data.shards import (
    DEFAULT_SHARD_ROWS,
    FORMAT_VERSION,
    INDEX_FILE,
    PAYLOADS,
    ShardError,
    fingerprint,
    sample_key,
    shard_name,
    write_shard,
)
from tempo_kit.errors import TempoKitError, check_choice
from tempo_kit.video.reading import Sampling

logger = logging.getLogger("tempo_kit.data")


class _CheckingDataset(TempoDataset):
    """The training dataset's checks, keeping the clip it decoded (the ``frames`` payload)."""

    last_clip = None

    def read_clip(self, record):
        self.last_clip = super().read_clip(record)
        return self.last_clip


def _payload(dataset: _CheckingDataset, record, payload: str) -> tuple[str, bytes] | None:
    if record.kind == "text":
        return None
    if payload == "bytes":
        suffix = Path(record.media).suffix.lstrip(".").lower() or "bin"
        return suffix, dataset.media_path(record).read_bytes()
    buffer = io.BytesIO()
    np.save(buffer, dataset.last_clip.frames.numpy(), allow_pickle=False)
    return "frames.npy", buffer.getvalue()


def write_one_shard(job: dict[str, Any]) -> dict[str, Any]:
    """Check and write one shard's rows; its sidecar (the index entry) once the tar is in place."""
    dataset = _CheckingDataset([], job["media_root"], sampling=job["sampling"], on_error="raise")
    samples, skips = [], []
    feature_shape = None
    for position, row in job["rows"]:
        where = f"{job['annotation']}:{position}"
        try:
            record = parse_row(row, where)
        except AnnotationError as error:
            skips.append({"where": where, "path": job["annotation"], "reason": f"malformed row: {error}"})
            continue
        try:
            dataset.last_clip = None
            sample = dataset.load(record)
            if job["payload"] == FEATURES_PAYLOAD:
                payload, feature_shape = feature_payload(job["features"], sample)
            else:
                payload = _payload(dataset, record, job["payload"])
        except (TempoKitError, OSError) as error:
            path = str(dataset.media_path(record)) if record.media else None
            skips.append({"where": where, "path": path, "reason": f"{type(error).__name__}: {error}"})
            continue
        clip = dataset.last_clip
        meta = clip_meta(clip) if clip is not None and job["payload"] == "frames" else None
        samples.append({"key": sample_key(position), "where": where, "row": row, "payload": payload, "clip": meta})
    folder = Path(job["folder"])
    tar = folder / f"{job['name']}.tar"
    entries = write_shard(tar, samples)
    sidecar = {"name": job["name"], "bytes": tar.stat().st_size, "rows": len(job["rows"]), "samples": entries}
    sidecar["skips"] = skips
    if feature_shape is not None:
        sidecar["feature_shape"] = feature_shape
    write_json(folder / f"{job['name']}.json", sidecar, indent=None)
    return sidecar


def _finished(folder: Path, name: str) -> dict[str, Any] | None:
    """The sidecar of a shard an earlier run finished (its tar present at the recorded size)."""
    sidecar, tar = folder / f"{name}.json", folder / f"{name}.tar"
    if not sidecar.is_file() or not tar.is_file():
        return None
    done = json.loads(sidecar.read_text())
    return done if tar.stat().st_size == done["bytes"] else None


def _check_folder_is_ours(folder: Path, run: str) -> None:
    others = sorted({p.stem.rsplit("-", 1)[-1] for p in folder.glob("shard-*.*")} - {run})
    if others:
        raise ShardError(
            f"{folder} holds shards of another prepare run ({', '.join(others)}): its annotation file, "
            "payload or frame geometry differ from this run's; prepare into an empty folder"
        )


def prepare_file(
    annotation: str | Path,
    folder: str | Path,
    *,
    media_root: str | Path | None = None,
    sampling: Sampling | None = None,
    payload: str = "bytes",
    shard_rows: int = DEFAULT_SHARD_ROWS,
    workers: int = 1,
    progress: bool = True,
    features: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Prepare one annotation file into ``folder``; returns the index (also ``folder/index.json``).

    ``features`` (:func:`~tempo_kit.data.feature_prepare.feature_settings`: the model, its
    identity, the dtype) makes a stage-3 feature store instead (payload ``features``).
    """
    if features is not None:
        payload = FEATURES_PAYLOAD
    else:
        check_choice(payload, PAYLOADS, "data.shard_payload")
    if shard_rows < 1 or workers < 1:
        raise ShardError(f"need shard_rows ≥ 1 and workers ≥ 1, got {shard_rows}, {workers}")
    annotation, folder = Path(annotation), Path(folder)
    sampling = Sampling.training() if sampling is None else sampling
    root = str(media_root) if media_root is not None else str(annotation.parent)
    geometry = sampling.load_arguments()
    if features is not None:  # the segments and the model decide a store's bytes too
        geometry = store_geometry(geometry, sampling.window, sampling.time_base)
    identity = geometry if features is None else {**geometry, "features": {k: features[k] for k in ("model_identity", "dtype")}}
    run = fingerprint(annotation, root, payload, identity, shard_rows)
    rows = read_rows(annotation)
    folder.mkdir(parents=True, exist_ok=True)
    _check_folder_is_ours(folder, run)
    remove_partials(folder, recursive=False)  # what a killed run was writing
    jobs, done = [], {}
    for number, start in enumerate(range(0, len(rows), shard_rows)):
        name = shard_name(number, run)
        if (sidecar := _finished(folder, name)) is not None:
            done[number] = sidecar
            continue
        jobs.append(
            {"name": name, "number": number, "rows": rows[start : start + shard_rows], "folder": str(folder),
             "annotation": str(annotation), "media_root": root, "sampling": sampling, "payload": payload,
             "features": features}
        )  # fmt: skip
    total = len(done) + len(jobs)
    if done:
        logger.info("%s: %d of %d shards already finished; writing the other %d", folder, len(done), total, len(jobs))
    _run_jobs(jobs, done, workers, progress, f"prepare {annotation.name}", total)
    shards = [done[number] for number in sorted(done)]
    index = _index(run, payload, geometry, annotation, root, shard_rows, shards)
    if features is not None:
        shape = next((shard["feature_shape"] for shard in shards if "feature_shape" in shard), None)
        index["features"] = {**features, "shape": shape}
    write_json(folder / INDEX_FILE, index, indent=None)
    return index


def _run_jobs(jobs: list[dict], done: dict[int, dict], workers: int, progress: bool, what: str, total: int) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=total - len(jobs), desc=what, unit="shard", disable=not progress)
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            done[job["number"]] = write_one_shard(job)
            bar.update()
    else:  # spawn: workers decode with torch, which must not inherit a forked parent's thread pools
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            futures = {pool.submit(write_one_shard, job): job["number"] for job in jobs}
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                bar.update()
    bar.close()


def _index(run, payload, geometry, annotation, root, shard_rows, shards: Sequence[dict]) -> dict[str, Any]:
    skips = [skip for shard in shards for skip in shard["skips"]]
    reasons = Counter(skip["reason"].split(":")[0] for skip in skips)
    counts = {
        "rows": sum(shard["rows"] for shard in shards),
        "kept": sum(len(shard["samples"]) for shard in shards),
        "skipped": len(skips),
        "skipped_by_reason": dict(reasons.most_common()),
        "shards": len(shards),
        "bytes": sum(shard["bytes"] for shard in shards),
    }
    return {
        "format": FORMAT_VERSION,
        "run": run,
        "payload": payload,
        "geometry": geometry,
        "source": {"annotation": str(annotation), "media_root": root},
        "shard_rows": shard_rows,
        "counts": counts,
        "skips": skips,
        "shards": [{k: shard[k] for k in ("name", "bytes", "rows", "samples")} for shard in shards],
    }
