"""The model card every saved model folder carries: ``README.md`` in the Hub's card format.

YAML front matter (``base_model``, ``library_name``, ``pipeline_tag``, ``tags``, ``license``) is
what the Hub indexes and ``huggingface_hub.ModelCard.load`` reads; the body says what the kit
knows: each part and the checkpoint it came from, the allocation settings, and, for a training
export, the recipe, what each stage trained, the data files with their row counts and the final
metrics. Written by ``TempoModel.save_pretrained`` before the manifest, so it is checked like
every other file of the folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tempo_kit.hub import LLM_HUB_NAME, SVLM_HUB_NAME, looks_like_hub_name

#: The card's file name: the Hub shows ``README.md`` as a repository's model card.
CARD_NAME = "README.md"
#: ``library_name`` of the card: the Hub's "use this model" names this package.
LIBRARY_NAME = "tempo-kit"
#: The Hub task Tempo answers: questions about a video, in text.
PIPELINE_TAG = "video-text-to-text"
#: Tags every card carries.
TAGS = ("tempo", "long-video-understanding", "video-question-answering", "token-allocation")
#: The license of the kit and of the Qwen3 / Qwen3-VL base checkpoints Tempo builds on.
LICENSE = "apache-2.0"
#: Hub ids known by their folder name (the stage recipes' ``checkpoints/<name>`` convention).
KNOWN_BASES = {hub_id.split("/")[-1].lower(): hub_id for hub_id in (SVLM_HUB_NAME, LLM_HUB_NAME)}


def base_model_ids(source: Any) -> list[str]:
    """The hub ids a component's ``pretrained`` stands for: itself if it is a hub id; ``org/name``
    of a hub-cache snapshot (``models--org--name/snapshots/<rev>``); the id a folder's name is
    known by; or, for a part of another kit model folder, that folder's card's ``base_model``."""
    if not source:
        return []
    text = str(source)
    if looks_like_hub_name(text):
        return [text]
    path = Path(text).expanduser()
    for part in path.parts:
        if part.startswith("models--") and part.count("--") >= 2:
            return [part.removeprefix("models--").replace("--", "/", 1)]
    if path.name.lower() in KNOWN_BASES:
        return [KNOWN_BASES[path.name.lower()]]
    parent_card = path.parent / CARD_NAME
    if parent_card.is_file():
        return list(read_front_matter(parent_card).get("base_model") or [])
    return []


def read_front_matter(card: Path) -> dict[str, Any]:
    """The YAML block at the top of a card, ``{}`` when it has none or it does not parse."""
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        return {}
    try:
        data = yaml.safe_load(text[4 : text.index("\n---", 4)])
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _table(header: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def model_card(config: Mapping[str, Any], kit_version: str, training: Mapping[str, Any] | None = None) -> str:
    """The card text for a model of ``config`` (``TempoConfig.to_dict()`` with each part's
    ``pretrained`` as built); ``training`` adds the recipe, trainability, data and metrics."""
    parts = [name for name in ("compressor", "projector", "decoder", "allocator") if isinstance(config.get(name), Mapping)]
    bases = {name: base_model_ids(config[name].get("pretrained")) for name in parts}
    metadata: dict[str, Any] = {
        "library_name": LIBRARY_NAME,
        "pipeline_tag": PIPELINE_TAG,
        "license": LICENSE,
        "tags": list(TAGS),
    }
    if all_bases := _unique(b for name in parts for b in bases[name]):
        metadata["base_model"] = all_bases
    title = (training or {}).get("name") or "Tempo model"
    trainable = (training or {}).get("trainable") or {}
    lines = [
        f"# {title}",
        "",
        "A [Tempo](https://arxiv.org/abs/2604.08120) model (query-aware compression of long videos with a small "
        f"VLM and adaptive token allocation) in the tempo-kit format, written by tempo-kit {kit_version}.",
        "",
        "## Parts",
        "",
        *_table(
            ("part", "component", "base checkpoint", "trained"),
            (
                (
                    name,
                    config[name].get("name"),
                    ", ".join(bases[name]) or ("-" if not config[name].get("pretrained") else "local folder"),
                    trainable.get(name, "-"),
                )
                for name in parts
            ),
        ),
        "",
        f"Allocation: budget {config.get('budget')} visual tokens per video, k_min {config.get('k_min')}, "
        f"reduction {json.dumps(config.get('reduction'))}.",
        "",
        "## Use",
        "",
        "```python",
        "from tempo_kit.inference import TempoPipeline",
        "",
        'pipe = TempoPipeline.from_pretrained("THIS_FOLDER_OR_HUB_ID")',
        'print(pipe.answer("video.mp4", "What happens after the goal?").text)',
        "```",
        "",
        "or `tempo-kit infer --model THIS_FOLDER_OR_HUB_ID --video video.mp4 --query \"...\"`.",
    ]
    if training:
        lines += ["", "## Training", "", f"Recipe `{training.get('name')}`."]
        if trainable:
            lines += ["", "Trainability per part: " + ", ".join(f"{k}: {v}" for k, v in trainable.items()) + "."]
        if data := training.get("data"):
            lines += ["", *_table(("split", "file", "rows"), ((d["split"], d["file"], d["rows"]) for d in data))]
        if metrics := training.get("metrics"):
            lines += ["", "Final metrics:", "", *_table(("metric", "value"), sorted(metrics.items()))]
        if recipe := training.get("recipe"):
            lines += ["", "<details><summary>Resolved recipe</summary>", "", "```yaml", recipe.rstrip(), "```", "", "</details>"]
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n".join(lines) + "\n"
