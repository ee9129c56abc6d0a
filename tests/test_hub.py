"""Hub ids wherever a model folder is taken: resolved through a real ``huggingface_hub`` cache,
offline; the released layout converted on load; each failure a one-line error naming the fix."""

from __future__ import annotations

import pytest
from hub_cache import HubAnswers, cache_repo, use_cache

from tempo_kit.errors import CheckpointError

COMMIT = "a" * 40
OTHER = "b" * 40


@pytest.fixture
def hub(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    use_cache(monkeypatch, cache)
    monkeypatch.chdir(tmp_path)
    return cache


def test_hub_id_loads_from_the_cache_offline(hub, tiny_tempo_dir, capsys):
    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.model import TempoModel

    snapshot = cache_repo(hub, "org/tempo-tiny", tiny_tempo_dir, COMMIT)
    pipe = TempoPipeline.from_pretrained("org/tempo-tiny")
    assert pipe.model.saved_at == snapshot
    assert "fetching model org/tempo-tiny from the local hub cache" in capsys.readouterr().err
    local = TempoModel.from_pretrained(tiny_tempo_dir)
    for (key, a), (_, b) in zip(local.state_dict().items(), pipe.model.state_dict().items(), strict=True):
        assert a.equal(b), key


def test_revision_picks_a_commit_or_ref(hub, tiny_tempo_dir):
    from tempo_kit.model import TempoModel

    cache_repo(hub, "org/tempo-tiny", tiny_tempo_dir, COMMIT)
    other = cache_repo(hub, "org/tempo-tiny", tiny_tempo_dir, OTHER, refs=("v2",))
    assert TempoModel.from_pretrained("org/tempo-tiny", revision="v2", load_weights=False).saved_at == other
    assert TempoModel.from_pretrained(f"org/tempo-tiny@{OTHER}", load_weights=False).saved_at == other
    with pytest.raises(CheckpointError, match=r"revision 'v9' of org/tempo-tiny is not in the hub cache .*unset HF_HUB_OFFLINE"):
        TempoModel.from_pretrained("org/tempo-tiny", revision="v9", load_weights=False)


def test_local_folder_wins_and_takes_no_revision(hub, tiny_tempo_dir):
    from tempo_kit.hub import model_folder

    assert model_folder(tiny_tempo_dir) == tiny_tempo_dir
    with pytest.raises(CheckpointError, match="applies to hub ids only"):
        model_folder(tiny_tempo_dir, revision="main")


def test_released_layout_is_converted_on_load(hub, tiny_checkpoints, tmp_path, capsys):
    from test_convert import write_released

    from tempo_kit.hub import SVLM_HUB_NAME
    from tempo_kit.model import TempoModel

    released = tmp_path / "released"
    released.mkdir()
    write_released(released, tiny_checkpoints)
    cache_repo(hub, "org/tempo-released", released, COMMIT)
    cache_repo(hub, SVLM_HUB_NAME, tiny_checkpoints["svlm"], OTHER)
    model = TempoModel.from_pretrained("org/tempo-released", load_weights=False)
    err = capsys.readouterr().err
    assert "released Tempo layout; converting it to the kit format" in err
    assert model.saved_at.parent.name == "org--tempo-released" and model.saved_at.name == COMMIT
    TempoModel.from_pretrained("org/tempo-released", load_weights=False)  # converted once, reused
    assert "using its kit-format conversion" in capsys.readouterr().err


def test_infer_takes_a_hub_id_and_names_the_fix_offline(hub, tiny_needle_benchmark, capsys):
    import json

    from tempo_kit.cli import main

    video = tiny_needle_benchmark.parent / json.loads(tiny_needle_benchmark.read_text().splitlines()[0])["video"]
    code = main(["infer", "--model", "org/absent", "--video", str(video), "--query", "q"])
    err = capsys.readouterr().err
    assert code == 2 and "model org/absent is not in the hub cache" in err
    assert "unset HF_HUB_OFFLINE to download it" in err and len(err.strip().splitlines()) == 2


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (404, "RepoNotFound", r"org/absent was not found on the hub: check the id, or, for a private repository, log in"),
        (401, "GatedRepo", r"org/absent is gated: accept its terms on the hub, then log in with `hf auth login`"),
        (404, "RevisionNotFound", r"revision 'nope' does not exist; pass a branch, tag or commit"),
    ],
)
def test_hub_answers_become_one_line_errors(tmp_path, monkeypatch, status, code, message):
    from tempo_kit.model import TempoModel

    server = HubAnswers(status, code)
    try:
        use_cache(monkeypatch, tmp_path, offline=False, endpoint=server.url)
        with pytest.raises(CheckpointError, match=message):
            TempoModel.from_pretrained("org/absent", revision="nope" if code == "RevisionNotFound" else None)
    finally:
        server.close()


def test_recipe_init_from_accepts_a_hub_id(hub):
    from tempo_kit.recipes import load_recipe

    cfg = load_recipe("demo", ["run.init_from=org/tempo-tiny"], check_paths=True)
    assert cfg.run.init_from == "org/tempo-tiny"
