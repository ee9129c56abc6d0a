"""Local checkpoint folders: the kit never downloads, so a path that is not a folder gets the
command that fetches it.

:func:`local_checkpoint` is the one check every loader uses (compressors, decoder, model folders,
converter, recipes): the folder exists, holds ``config.json`` (of the right ``model_type``) and,
where asked, a tokenizer. ``hf`` is the command line that ships with ``huggingface_hub`` (a
dependency of transformers); its older name ``huggingface-cli`` is no longer installed.
"""

from __future__ import annotations

import json
from pathlib import Path

from tempo_kit.errors import CheckpointError

#: The hub checkpoints Tempo is built from: the SVLM (compressor) and the global LLM (decoder).
SVLM_HUB_NAME = "Qwen/Qwen3-VL-2B-Instruct"
LLM_HUB_NAME = "Qwen/Qwen3-4B"

#: The download command of ``huggingface_hub``'s command line.
DOWNLOAD_COMMAND = "hf download"

#: Files of which at least one must be present for a checkpoint folder to carry a tokenizer
#: (transformers otherwise builds an empty tokenizer without complaint).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def download_command(repo: str, local_dir: str | None = None) -> str:
    """``hf download REPO --local-dir checkpoints/NAME``: the command that fetches ``repo`` locally."""
    target = local_dir or f"checkpoints/{Path(str(repo)).name}"
    return f"{DOWNLOAD_COMMAND} {repo} --local-dir {target}"


#: First path parts that mark a local folder, never a hub organisation.
LOCAL_ROOTS = ("checkpoints", "outputs", "data", "models", "runs")


def looks_like_hub_name(text: str) -> bool:
    """``org/name`` that is not a relative or absolute local path (``./x``, ``/x``, ``~/x``) and
    whose first part is neither one of :data:`LOCAL_ROOTS` nor an existing local folder."""
    text = str(text)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        return False
    first = text.split("/", 1)[0]
    return first not in LOCAL_ROOTS and not Path(first).expanduser().is_dir()


def missing_folder_hint(value: str, example_hub: str | None = None) -> str:
    """What to do about a path that is not a local folder: the download command for a hub id."""
    if looks_like_hub_name(value):
        return (
            f"'{value}' looks like a hub id and the kit never downloads: fetch it first "
            f"(`{download_command(value)}`) and pass that folder"
        )
    example = f", e.g. `{download_command(example_hub)}`" if example_hub else ""
    return f"pass an existing local checkpoint folder (download checkpoints first{example})"


def local_checkpoint(
    pretrained: str | Path,
    what: str,
    *,
    model_type: str | None = None,
    need_tokenizer: bool = False,
    example_hub: str | None = None,
) -> Path:
    """``pretrained`` as a local Hugging Face checkpoint folder, or a one-line :class:`CheckpointError`.

    Reads ``config.json`` only (never a weight file). With ``model_type`` the config must declare
    it: another model's folder (e.g. the LLM's where the SVLM belongs) would otherwise build a
    default-size model from an unrelated config. With ``need_tokenizer`` one of
    :data:`TOKENIZER_FILES` must be there.
    """
    path = Path(pretrained).expanduser()
    if not path.is_dir():
        raise CheckpointError(
            f"{what} checkpoint {str(pretrained)!r} is not a local folder: "
            f"{missing_folder_hint(str(pretrained), example_hub)}"
        )
    config = path / "config.json"
    if not config.is_file():
        raise CheckpointError(
            f"{what} checkpoint folder {str(path)!r} has no config.json; point to a Hugging Face "
            "checkpoint folder (the one holding config.json and *.safetensors)"
        )
    try:
        found = json.loads(config.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as error:
        raise CheckpointError(f"{config} is not a JSON object: {error}") from None
    if model_type is not None and found != model_type:
        raise CheckpointError(
            f"{what} checkpoint {str(path)!r} is a {found!r} model, not {model_type!r}: point it at a "
            f"{model_type} checkpoint folder"
        )
    if need_tokenizer and not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(
            f"{what} checkpoint {path} holds no tokenizer ({', '.join(TOKENIZER_FILES)}); save the "
            "model's tokenizer beside its weights, e.g. AutoTokenizer.from_pretrained(BASE).save_pretrained(PATH)"
        )
    return path
