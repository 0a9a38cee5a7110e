"""Preset manifests (the repository's models/ folder, shipped as package data)
and the resolution of a model argument: preset name or path."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edge_collab.backends.gguf_file import check_gguf_path
from edge_collab.errors import InstallError, ModelNotInstalledError, UnknownPresetError
from edge_collab.paths import models_dir
from edge_collab.presets.stores import is_store_spec, resolve_store_spec

DEFAULT_PAIR = "default"


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    sha256: str
    member: str  # path of the chunk inside the wheel


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    file: str
    size: int
    sha256: str
    license: str
    architecture: str
    tokenizer: str
    chat_format: str
    wheels: tuple[Wheel, ...]

    def path(self, data_dir: str | Path | None = None) -> Path:
        return models_dir(data_dir) / self.file

    def verified_marker(self, data_dir: str | Path | None = None) -> Path:
        return models_dir(data_dir) / f"{self.file}.sha256"

    def is_installed(self, data_dir: str | Path | None = None) -> bool:
        path, marker = self.path(data_dir), self.verified_marker(data_dir)
        return (
            path.is_file()
            and path.stat().st_size == self.size
            and marker.is_file()
            and marker.read_text().strip() == self.sha256
        )


@dataclass(frozen=True)
class Pair:
    name: str
    student: str
    mentor: str
    description: str


def _manifest_folder() -> Path:
    # Wheels carry the manifests as edge_collab/manifests (pyproject maps the
    # repository's models/ folder there); a source checkout or an editable
    # install reads models/ itself.
    packaged = Path(str(resources.files("edge_collab"))) / "manifests"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "models"


def _manifest_files() -> list[Path]:
    return sorted(_manifest_folder().glob("*.toml"))


def _read_toml(path: Path) -> dict:  # type: ignore[type-arg]
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InstallError(f"broken preset manifest {path.name}: {error}") from None


def load_presets() -> dict[str, Preset]:
    presets = {}
    for path in _manifest_files():
        if path.name == "pairs.toml":
            continue
        data = _read_toml(path)
        try:
            wheels = tuple(Wheel(**w) for w in data.pop("wheels"))
            preset = Preset(wheels=wheels, **data)
        except (KeyError, TypeError) as error:
            raise InstallError(f"broken preset manifest {path.name}: {error}") from None
        presets[preset.name] = preset
    return presets


def load_pairs() -> dict[str, Pair]:
    pairs_file = next((p for p in _manifest_files() if p.name == "pairs.toml"), None)
    if pairs_file is None:
        # Only a broken installation lacks it: the file ships with the package.
        raise InstallError(f"the preset manifests are missing from {_manifest_folder()}; reinstall edge-collab")
    return {name: Pair(name=name, **fields) for name, fields in _read_toml(pairs_file).items()}


def install_hint(name: str) -> str:
    return f"edge-collab models install {name}"


def resolve_model(spec: str, data_dir: str | Path | None = None, *, pair_hint: str | None = None) -> Path:
    """The GGUF path for a preset name, a path to a .gguf file, an Ollama model
    (ollama:NAME[:TAG]) or a Hugging Face file (hf:OWNER/REPO/FILE.gguf, hf:OWNER/REPO:QUANT)."""
    if is_store_spec(spec):
        return check_gguf_path(resolve_store_spec(spec))
    presets = load_presets()
    if spec in presets:
        preset = presets[spec]
        if not preset.is_installed(data_dir):
            raise ModelNotInstalledError(f"model {spec} is not installed; run: {install_hint(pair_hint or spec)}")
        return preset.path(data_dir)
    looks_like_path = spec.endswith(".gguf") or "/" in spec or "\\" in spec or Path(spec).exists()
    if looks_like_path:
        return check_gguf_path(spec)
    known = ", ".join(sorted(presets))
    raise UnknownPresetError(
        f"unknown model {spec!r}: not a preset ({known}), a path to a .gguf file, ollama:NAME or hf:OWNER/REPO/FILE"
    )
