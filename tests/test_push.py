"""``push_to_hub`` / ``tempo-kit push``: exactly the folder's files and card go up in one commit, and
a push without a token stops before anything is written. Nothing here reaches the network."""

from __future__ import annotations

import pytest
from hub_cache import HubAnswers, use_cache

from tempo_kit.errors import CheckpointError


def test_upload_plan_is_every_file_and_the_card(tiny_tempo_dir):
    from huggingface_hub import ModelCard

    from tempo_kit.push import upload_plan

    plan = upload_plan(tiny_tempo_dir)
    files = sorted(p.relative_to(tiny_tempo_dir).as_posix() for p in tiny_tempo_dir.rglob("*") if p.is_file())
    assert [op.path_in_repo for op in plan] == files
    assert {"README.md", "manifest.json", "tempo_config.json"} <= set(files)
    card = next(op for op in plan if op.path_in_repo == "README.md")
    assert ModelCard.load(card.path_or_fileobj).data.library_name == "tempo-kit"


def test_upload_plan_refuses_a_damaged_folder(tiny_tempo_dir, tmp_path):
    import shutil

    from tempo_kit.push import upload_plan

    copy = shutil.copytree(tiny_tempo_dir, tmp_path / "copy")
    (copy / "README.md").write_text("edited")
    with pytest.raises(CheckpointError, match="README.md has 6 bytes but was saved with"):
        upload_plan(copy)


def test_push_without_a_token_names_the_fix(tiny_tempo_dir, tmp_path, monkeypatch, capsys):
    from tempo_kit.cli import main
    from tempo_kit.model import TempoModel

    use_cache(monkeypatch, tmp_path / "hub")
    code = main(["push", str(tiny_tempo_dir), "org/tempo-tiny"])
    err = capsys.readouterr().err
    assert code == 2 and "pushing to the hub needs a token: log in with `hf auth login`" in err
    model = TempoModel.from_pretrained(tiny_tempo_dir, load_weights=False)
    with pytest.raises(CheckpointError, match="needs a token"):
        model.push_to_hub("org/tempo-tiny")  # checked before the model is saved


def test_push_with_a_refused_token_is_one_line(tiny_tempo_dir, tmp_path, monkeypatch):
    from tempo_kit.push import push_folder

    server = HubAnswers(401, "")
    try:
        use_cache(monkeypatch, tmp_path / "hub", offline=False, endpoint=server.url)
        with pytest.raises(CheckpointError, match=r"the hub answered 401: log in with `hf auth login`"):
            push_folder(tiny_tempo_dir, "org/tempo-tiny", token="hf_wrong")
    finally:
        server.close()


def test_push_dry_run_lists_the_files(tiny_tempo_dir, capsys):
    from tempo_kit.cli import main

    assert main(["push", str(tiny_tempo_dir), "org/tempo-tiny", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "README.md\t" in out and "would be uploaded to org/tempo-tiny" in out
