"""Models from where users keep them: a fake Ollama store and a fake Hugging
Face cache, laid out as those tools write them, holding the tiny models.
Nothing is downloaded: the hub is switched off (HF_HUB_OFFLINE)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_collab import CollabPair, GenerationSettings, ModelSettings
from edge_collab.cli.main import cli
from edge_collab.errors import ModelFileError, UnknownPresetError
from edge_collab.presets.registry import resolve_model


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ollama_store(tmp_path, tiny_paths, monkeypatch) -> Path:
    """~/.ollama/models as `ollama pull` leaves it: a manifest per name and tag, blobs by digest."""
    root = tmp_path / "ollama-models"
    for name, tag, model, dash in (
        ("library/tiny-student", "latest", tiny_paths["student"], True),
        ("library/tiny-mentor", "0.5b", tiny_paths["mentor"], True),
        ("someone/tiny-old", "v1", tiny_paths["other"], False),  # an older store names blobs "sha256:..."
    ):
        digest = _digest(model)
        blob = root / "blobs" / (f"sha256-{digest}" if dash else f"sha256:{digest}")
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, blob)
        config = root / "blobs" / f"sha256-{'0' * 64}"
        config.write_text("{}")
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": f"sha256:{'0' * 64}"},
            "layers": [
                {"mediaType": "application/vnd.ollama.image.template", "digest": f"sha256:{'1' * 64}", "size": 10},
                {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": 1},
            ],
        }
        path = root / "manifests" / "registry.ollama.ai" / name / tag
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest))
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    return root


@pytest.fixture
def hf_cache(tmp_path, tiny_paths, monkeypatch) -> Path:
    """The hub cache as huggingface_hub writes it: models--OWNER--REPO/{blobs,refs,snapshots}."""
    root = tmp_path / "hf-cache"
    for repo, files in (
        ("tiny/student-GGUF", {"tiny-student-Q4_K_M.gguf": "student", "tiny-student-Q8_0.gguf": "student"}),
        ("tiny/mentor-GGUF", {"sub/tiny-mentor.Q4_K_M.gguf": "mentor", "README.md": None}),
    ):
        folder = root / f"models--{repo.replace('/', '--')}"
        revision = "a" * 40
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(revision)
        for name, role in files.items():
            source = tiny_paths[role] if role else None
            data = source.read_bytes() if source else b"# readme"
            blob = folder / "blobs" / hashlib.sha256(data + name.encode()).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = folder / "snapshots" / revision / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path("../" * (name.count("/") + 2)) / "blobs" / blob.name)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    # huggingface_hub reads HF_HUB_OFFLINE once, at import (another test may have imported it first).
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return root


def test_ollama_names_resolve_to_their_model_blobs(ollama_store, tiny_paths):
    student = resolve_model("ollama:tiny-student")
    assert student.read_bytes() == tiny_paths["student"].read_bytes() and student.name.startswith("sha256-")
    assert resolve_model("ollama:tiny-student:latest") == student
    assert resolve_model("ollama:tiny-mentor:0.5b").read_bytes() == tiny_paths["mentor"].read_bytes()
    assert resolve_model("ollama:someone/tiny-old:v1").name.startswith("sha256:")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ollama:tiny-mentor", "no model 'tiny-mentor'.*ollama pull"),  # only :0.5b is pulled
        ("ollama:nothing:here", "no model 'nothing:here'"),
        ("ollama:../../etc:passwd", "not an Ollama model name"),
        ("ollama:", "not an Ollama model name"),
    ],
)
def test_ollama_names_not_in_the_store_are_one_line_errors(ollama_store, spec, message):
    with pytest.raises((ModelFileError, UnknownPresetError), match=message):
        resolve_model(spec)


def test_ollama_manifest_without_its_blob(ollama_store):
    for blob in (ollama_store / "blobs").glob("sha256-*"):
        if blob.stat().st_size > 100:
            blob.unlink()
    with pytest.raises(ModelFileError, match="blob for 'tiny-student' is missing"):
        resolve_model("ollama:tiny-student")


def test_hf_files_resolve_from_the_cache(hf_cache, tiny_paths):
    exact = resolve_model("hf:tiny/student-GGUF/tiny-student-Q8_0.gguf")
    assert exact.read_bytes() == tiny_paths["student"].read_bytes()
    assert resolve_model("hf:tiny/student-GGUF:Q4_K_M").name == "tiny-student-Q4_K_M.gguf"
    assert resolve_model("hf:tiny/student-GGUF:q8_0").name == "tiny-student-Q8_0.gguf"
    assert resolve_model("hf:tiny/mentor-GGUF/sub/tiny-mentor.Q4_K_M.gguf").read_bytes() == (
        tiny_paths["mentor"].read_bytes()
    )
    assert resolve_model("hf:tiny/mentor-GGUF:Q4_K_M").name == "tiny-mentor.Q4_K_M.gguf"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hf:tiny/student-GGUF/missing.gguf", "not in the Hugging Face cache and could not be downloaded"),
        ("hf:tiny/student-GGUF:Q2_K", "not in the Hugging Face cache, and the hub cannot be asked"),
        ("hf:nobody/nothing:Q4_K_M", "not in the Hugging Face cache"),
        ("hf:tiny/student-GGUF", "not a Hugging Face file"),
        ("hf:just-a-name.gguf", "not a Hugging Face file"),
        ("hf:tiny/student-GGUF/../../../etc/x.gguf", "not a Hugging Face file"),
    ],
)
def test_hf_files_not_cached_offline_are_one_line_errors(hf_cache, spec, message):
    with pytest.raises((ModelFileError, UnknownPresetError), match=message) as refused:
        resolve_model(spec)
    assert "\n" not in str(refused.value)


def test_a_pair_opens_from_both_stores(ollama_store, hf_cache):
    settings = GenerationSettings(max_new_tokens=8, probe_rate=1.0)
    model = ModelSettings(n_ctx=256, threads=1)
    with CollabPair.open(
        "ollama:tiny-student",
        "hf:tiny/mentor-GGUF:Q4_K_M",
        settings=settings,
        student_settings=model,
        mentor_settings=model,
    ) as pair:
        result = pair.generate("the cat")
    assert result.stats.tokens_total == 8 and result.stats.probes > 0


def test_models_list_shows_what_each_store_holds(ollama_store, hf_cache):
    shown = CliRunner().invoke(cli, ["models", "list"])
    assert shown.exit_code == 0, shown.output
    for name in ("ollama:tiny-student:latest", "ollama:tiny-mentor:0.5b", "ollama:someone/tiny-old:v1"):
        assert name in shown.output
    assert "hf:tiny/student-GGUF/tiny-student-Q4_K_M.gguf" in shown.output
    assert "hf:tiny/mentor-GGUF/sub/tiny-mentor.Q4_K_M.gguf" in shown.output and "README" not in shown.output
    listed = json.loads(CliRunner().invoke(cli, ["models", "list", "--json"]).stdout)
    assert len(listed["ollama"]) == 3 and len(listed["huggingface"]) == 3
    ran = CliRunner().invoke(
        cli, ["run", "the cat", "--student", "ollama:tiny-student", "--method", "student", "--max-tokens", "4"]
    )
    assert ran.exit_code == 0, ran.output
