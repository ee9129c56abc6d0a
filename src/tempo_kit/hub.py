"""Local folder or hub id: the one place that decides.

Component checkpoints (the SVLM, the LLM) are local folders: a path that is not one gets the
command that fetches it. A whole saved Tempo model may also be a hub id (:func:`model_folder`):
it is fetched with ``huggingface_hub`` only then, never silently.

:func:`local_checkpoint` is the one check every loader uses (compressors, decoder, model folders,
converter, recipes): the folder exists, holds ``config.json`` (of the right ``model_type``) and,
where asked, a tokenizer. ``hf`` is the command line that ships with ``huggingface_hub`` (a
dependency of transformers).
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


# ---------------------------------------------------------------------------------- hub model ids
#: Separator of an optional revision in a hub id given as one string (``org/name@v1.0``), for the
#: places that take only a string: ``--model`` and ``run.init_from``.
REVISION_SEPARATOR = "@"
#: Where a released-layout hub model is converted to the kit format, under the hub cache's parent.
CONVERTED_DIR = "tempo-kit-converted"
#: What a user does about a hub id that needs a token.
LOGIN_FIX = "log in with `hf auth login` (or set HF_TOKEN)"


def split_revision(value: str, revision: str | None = None) -> tuple[str, str | None]:
    """``("org/name", "v1")`` from ``org/name@v1``; an explicit ``revision`` wins over the suffix."""
    text = str(value)
    if REVISION_SEPARATOR in text and looks_like_hub_name(text.split(REVISION_SEPARATOR, 1)[0]):
        text, suffix = text.split(REVISION_SEPARATOR, 1)
        revision = revision or suffix
    return text, revision


def is_hub_model(value: str | Path) -> bool:
    """Whether ``value`` is to be fetched from the hub: not an existing local folder, and ``org/name``."""
    if Path(str(value)).expanduser().is_dir():
        return False
    return looks_like_hub_name(split_revision(str(value))[0])


def model_folder(value: str | Path, *, revision: str | None = None, what: str = "model") -> Path:
    """A kit-format model folder for a local path (returned as is) or a hub id.

    A hub id is fetched with ``huggingface_hub.snapshot_download`` (the user's cache, token and
    ``HF_HUB_OFFLINE``), announced on stderr: the kit downloads only when given a hub id. A
    snapshot in the released Tempo layout is converted to the kit format once, beside the hub
    cache, and that folder returned (said on stderr too).
    """
    if not is_hub_model(value):
        if revision is not None:
            raise CheckpointError(f"{what} {value}: revision={revision!r} applies to hub ids only; leave it out for a local folder")
        return Path(str(value)).expanduser()
    repo_id, revision = split_revision(str(value), revision)
    snapshot = download(repo_id, revision=revision, what=what)
    if (snapshot / "tempo_config.json").is_file():
        return snapshot
    if _is_released_layout(snapshot):
        return _converted_released(repo_id, snapshot)
    raise CheckpointError(
        f"{what} {repo_id} (hub) holds neither tempo_config.json (the kit format) nor a released Tempo "
        "config.json; point at a repository a tempo-kit export or the released Tempo weights were uploaded to"
    )


def download(repo_id: str, *, revision: str | None = None, what: str = "model") -> Path:
    """``snapshot_download(repo_id, revision)`` into the user's hub cache, its errors as one line each."""
    import sys

    from huggingface_hub import constants, snapshot_download
    from huggingface_hub import errors as hub_errors

    at = f"{repo_id}@{revision}" if revision else repo_id
    where = "the local hub cache (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else "the hub"
    print(f"tempo-kit: fetching {what} {at} from {where} into {constants.HF_HUB_CACHE}", file=sys.stderr)
    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except hub_errors.RevisionNotFoundError:
        raise CheckpointError(
            f"{what} {repo_id}: revision {revision!r} does not exist; pass a branch, tag or commit the repository has"
        ) from None
    except hub_errors.GatedRepoError:
        raise CheckpointError(
            f"{what} {repo_id} is gated: accept its terms on the hub, then {LOGIN_FIX}"
        ) from None
    except hub_errors.RepositoryNotFoundError:
        raise CheckpointError(
            f"{what} {repo_id} was not found on the hub: check the id, or, for a private repository, {LOGIN_FIX}"
        ) from None
    except hub_errors.LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            fix = "unset HF_HUB_OFFLINE to download it, or fetch it where there is network (`hf download " + repo_id + "`)"
        else:
            fix = "check the network connection, or fetch it elsewhere and copy the hub cache"
        state = f"revision {revision!r} of " if revision else ""
        raise CheckpointError(f"{what} {state}{repo_id} is not in the hub cache {constants.HF_HUB_CACHE}: {fix}") from None
    except hub_errors.HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        fix = LOGIN_FIX if status in (401, 403) else "retry later, or check the id"
        raise CheckpointError(f"{what} {repo_id}: the hub answered {status}: {fix}") from None


def _is_released_layout(folder: Path) -> bool:
    """A released Tempo checkpoint: its ``config.json`` names the projector and the SVLM."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and "mm_projector_type" in config and "mm_vision_tower_aux_list" in config


def _converted_released(repo_id: str, snapshot: Path) -> Path:
    """The kit-format conversion of a released snapshot, written once per commit beside the hub cache.

    The base SVLM the conversion needs is the one the released config names (a hub id, fetched the
    same way)."""
    import sys

    from huggingface_hub import constants

    target = Path(constants.HF_HUB_CACHE).parent / CONVERTED_DIR / repo_id.replace("/", "--") / snapshot.name
    if (target / "tempo_config.json").is_file():
        print(f"tempo-kit: {repo_id} is in the released Tempo layout; using its kit-format conversion {target}", file=sys.stderr)
        return target
    from tempo_kit.checkpoints.convert import convert_released_to_kit

    config = json.loads((snapshot / "config.json").read_text())
    names = config.get("mm_vision_tower_aux_list") or [SVLM_HUB_NAME]
    svlm = names[0] if isinstance(names, list) else names
    svlm_folder = Path(svlm) if Path(str(svlm)).is_dir() else download(str(svlm), what="base SVLM")
    print(
        f"tempo-kit: {repo_id} is in the released Tempo layout; converting it to the kit format "
        f"once, into {target}",
        file=sys.stderr,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    convert_released_to_kit(snapshot, svlm_folder, target, progress=False)
    return target
