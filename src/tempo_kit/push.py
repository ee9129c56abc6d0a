"""Uploading a saved model folder to the hub: ``tempo-kit push FOLDER REPO_ID`` and ``push_to_hub``.

The folder is checked as loading checks it (``tempo_config.json``, every file against
``manifest.json``) and uploaded in one commit with ``huggingface_hub``'s ``create_commit``: its
files as they are, the model card (``README.md``) included, so the hub repository loads with
``TempoPipeline.from_pretrained("org/name")`` and shows the card. :func:`upload_plan` is that
commit's content, computed without sending (what ``--dry-run`` prints).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tempo_kit.errors import CheckpointError

#: What a user does to push without a token.
TOKEN_FIX = "log in with `hf auth login` (or set HF_TOKEN) using a token with write access"
#: Commit message of an upload that names none.
DEFAULT_MESSAGE = "Upload Tempo model (tempo-kit)"


def upload_plan(folder: str | Path) -> list:
    """The ``CommitOperationAdd`` of every file of a checked kit model folder, by path."""
    from huggingface_hub import CommitOperationAdd

    from tempo_kit.manifest import verify_folder
    from tempo_kit.model.card import CARD_NAME
    from tempo_kit.model.storage import read_config
    from tempo_kit.parts import COMPONENTS

    root = Path(folder).expanduser()
    read_config(root, COMPONENTS)
    verify_folder(root)
    if not (root / CARD_NAME).is_file():
        raise CheckpointError(
            f"{root} has no model card ({CARD_NAME}): save it again with this kit "
            "(TempoModel.from_pretrained(FOLDER).save_pretrained(NEW_FOLDER)) so the hub page says what it is"
        )
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return [CommitOperationAdd(path_in_repo=p.relative_to(root).as_posix(), path_or_fileobj=str(p)) for p in files]


def hub_token(token: str | None = None) -> str:
    """``token`` or the user's saved / ``HF_TOKEN`` token, else a one-line error naming the fix."""
    from huggingface_hub import get_token

    found = token or get_token()
    if not found:
        raise CheckpointError(f"pushing to the hub needs a token: {TOKEN_FIX}")
    return found


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
) -> str:
    """Upload a saved model folder to ``repo_id`` (created if missing) in one commit; returns its URL."""
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hub_errors

    token = hub_token(token)
    operations = upload_plan(folder)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or DEFAULT_MESSAGE,
            revision=revision,
            create_pr=create_pr,
        )
    except hub_errors.HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        fix = TOKEN_FIX if status in (401, 403) else "check the repository id and the network, then retry"
        raise CheckpointError(f"pushing {folder} to {repo_id}: the hub answered {status}: {fix}") from None
    return str(getattr(info, "pr_url", None) or getattr(info, "commit_url", info))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a saved model folder (a fit's <output_dir>/final, or a conversion)")
    parser.add_argument("repo_id", help="hub repository to upload to, e.g. my-org/tempo-6b-sports")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    parser.add_argument("--message", default=None, help=f"commit message (default: {DEFAULT_MESSAGE!r})")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the files the commit would upload, and send nothing"
    )


def run(args: argparse.Namespace) -> int:
    if args.dry_run:
        operations = upload_plan(args.folder)
        total = 0
        for op in operations:
            size = Path(op.path_or_fileobj).stat().st_size
            total += size
            print(f"{op.path_in_repo}\t{size}")
        print(f"{len(operations)} files, {total} bytes would be uploaded to {args.repo_id}")
        return 0
    url = push_folder(
        args.folder,
        args.repo_id,
        private=args.private or None,
        revision=args.revision,
        commit_message=args.message,
        create_pr=args.create_pr,
    )
    print(f"uploaded {args.folder} to {url}")
    return 0
