"""GGUF files where users already keep them: Ollama's model store and the
Hugging Face cache (which llama.cpp's `-hf` and LM Studio's downloads fill).

    ollama:qwen2.5:0.5b             Ollama's manifest for the model names its model layer's blob
    hf:OWNER/REPO/FILE.gguf         one file of a Hugging Face repository
    hf:OWNER/REPO:Q4_K_M            the repository's cached GGUF of that quantization

Ollama's store is read offline, as Ollama writes it: `$OLLAMA_MODELS`, else
`~/.ollama/models`, holding `manifests/<registry>/<namespace>/<model>/<tag>`
(JSON; the layer of media type `application/vnd.ollama.image.model` is the
GGUF) and `blobs/sha256-<digest>`. The Hugging Face cache is read with
huggingface_hub's own functions (`HF_HUB_CACHE` moves it); a file not in it is
downloaded with a progress bar when the hub can be reached, and its sha256
checked against the one the hub publishes.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from edge_collab.errors import ModelFileError, UnknownPresetError
from edge_collab.hashing import sha256_file

OLLAMA_PREFIX, HF_PREFIX = "ollama:", "hf:"
_OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
_OLLAMA_REGISTRY = "registry.ollama.ai"


def is_store_spec(spec: str) -> bool:
    return spec.startswith((OLLAMA_PREFIX, HF_PREFIX))


def resolve_store_spec(spec: str) -> Path:
    if spec.startswith(OLLAMA_PREFIX):
        return resolve_ollama(spec.removeprefix(OLLAMA_PREFIX))
    return resolve_hf(spec.removeprefix(HF_PREFIX))


# ---- Ollama ---------------------------------------------------------------


def ollama_root() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models").expanduser()


def _ollama_manifest_path(name: str) -> Path:
    """Ollama's names: model[:tag], namespace/model[:tag], host/namespace/model[:tag]."""
    base, tag = name.rsplit(":", 1) if ":" in name and "/" not in name.rsplit(":", 1)[1] else (name, "latest")
    parts = [part for part in base.split("/") if part]
    if not parts or any(part in (".", "..") for part in parts) or len(parts) > 3:
        raise UnknownPresetError(f"not an Ollama model name: {name!r} (e.g. ollama:qwen2.5:0.5b)")
    if len(parts) == 1:
        parts = [_OLLAMA_REGISTRY, "library", *parts]
    elif len(parts) == 2:
        parts = [_OLLAMA_REGISTRY, *parts]
    if not tag or tag in (".", "..") or "/" in tag:
        raise UnknownPresetError(f"not an Ollama model name: {name!r} (e.g. ollama:qwen2.5:0.5b)")
    return ollama_root() / "manifests" / Path(*parts) / tag


def resolve_ollama(name: str) -> Path:
    manifest_path = _ollama_manifest_path(name)
    if not manifest_path.is_file():
        raise ModelFileError(
            f"Ollama has no model {name!r} in {ollama_root()} (run `ollama pull {name}`, or set OLLAMA_MODELS)"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        layers = manifest["layers"]
        digest = next(layer["digest"] for layer in layers if layer.get("mediaType") == _OLLAMA_MODEL_LAYER)
    except (ValueError, KeyError, TypeError, StopIteration):
        raise ModelFileError(f"Ollama's manifest for {name!r} names no model layer: {manifest_path}") from None
    if not re.fullmatch(r"sha256[:-][0-9a-f]{64}", str(digest)):
        raise ModelFileError(f"Ollama's manifest for {name!r} has an unexpected digest {digest!r}")
    blobs = ollama_root() / "blobs"
    for candidate in (blobs / digest.replace(":", "-"), blobs / digest):  # newer stores use "-", older ":"
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"Ollama's blob for {name!r} is missing ({digest}); run `ollama pull {name}` again")


def ollama_models() -> list[tuple[str, Path]]:
    """(ollama:name:tag, blob) for every model in the store with a readable model layer."""
    root = ollama_root() / "manifests"
    found = []
    for manifest in sorted(root.glob("*/*/*/*")) if root.is_dir() else []:
        registry, namespace, model, tag = manifest.relative_to(root).parts
        name = model if (registry, namespace) == (_OLLAMA_REGISTRY, "library") else f"{namespace}/{model}"
        if registry != _OLLAMA_REGISTRY:
            name = f"{registry}/{namespace}/{model}"
        try:
            found.append((f"{OLLAMA_PREFIX}{name}:{tag}", resolve_ollama(f"{name}:{tag}")))
        except (ModelFileError, UnknownPresetError):
            continue
    return found


# ---- Hugging Face -----------------------------------------------------------


@dataclass(frozen=True)
class HfSpec:
    repo_id: str
    filename: str | None  # one file, or None with `quant`
    quant: str | None


def parse_hf(spec: str) -> HfSpec:
    """OWNER/REPO/PATH/FILE.gguf, or OWNER/REPO:QUANT."""
    if ":" in spec:
        repo_id, _, quant = spec.partition(":")
        if repo_id.count("/") == 1 and quant:
            return HfSpec(repo_id, None, quant)
    else:
        parts = spec.split("/")
        if len(parts) >= 3 and spec.endswith(".gguf") and all(p and p not in (".", "..") for p in parts):
            return HfSpec("/".join(parts[:2]), "/".join(parts[2:]), None)
    raise UnknownPresetError(
        f"not a Hugging Face file: hf:{spec} (write hf:OWNER/REPO/FILE.gguf or hf:OWNER/REPO:QUANT, e.g. Q4_K_M)"
    )


def hf_cache_dir() -> str:
    """The hub cache folder, read now (huggingface_hub reads HF_HUB_CACHE once, at import)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def _cached_ggufs(repo_id: str) -> list[Path]:
    """The repository's GGUF files in the local cache, every revision."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(hf_cache_dir())
    except CacheNotFound:
        return []
    files = []
    for repo in cache.repos:
        if repo.repo_id == repo_id and repo.repo_type == "model":
            for revision in repo.revisions:
                files += [Path(f.file_path) for f in revision.files if f.file_name.endswith(".gguf")]
    return sorted(set(files))


def _matches_quant(path: Path, quant: str) -> bool:
    return re.search(rf"(?i)(?<![a-z0-9]){re.escape(quant)}(?![a-z0-9])", path.name) is not None


def resolve_hf(spec_text: str) -> Path:
    from huggingface_hub import try_to_load_from_cache

    spec = parse_hf(spec_text)
    if spec.filename is not None:
        cached = try_to_load_from_cache(spec.repo_id, spec.filename, cache_dir=hf_cache_dir())
        if isinstance(cached, str):
            return Path(cached)
        return _download(spec.repo_id, spec.filename)
    assert spec.quant is not None
    matches = [path for path in _cached_ggufs(spec.repo_id) if _matches_quant(path, spec.quant)]
    shards = [path for path in matches if re.search(r"-\d{5}-of-\d{5}\.gguf$", path.name)]
    if shards and len(shards) == len(matches):
        raise ModelFileError(f"hf:{spec_text} is split into {len(shards)} files; name the first: hf:{spec.repo_id}/...")
    matches = [path for path in matches if path not in shards]
    if len({path.name for path in matches}) == 1:
        return matches[-1]
    if len(matches) > 1:
        names = ", ".join(sorted({path.name for path in matches}))
        raise ModelFileError(f"hf:{spec_text} matches several cached files ({names}); name one: hf:{spec.repo_id}/FILE")
    return _download(spec.repo_id, _remote_file_for_quant(spec.repo_id, spec.quant, spec_text))


def _remote_file_for_quant(repo_id: str, quant: str, spec_text: str) -> str:
    from huggingface_hub import HfApi

    try:
        names = [name for name in HfApi().list_repo_files(repo_id) if name.endswith(".gguf")]
    except Exception as error:  # offline, unknown repository, no permission: one line, whatever the cause
        raise ModelFileError(
            f"hf:{spec_text} is not in the Hugging Face cache, and the hub cannot be asked ({_reason(error)})"
        ) from None
    matches = [name for name in names if _matches_quant(Path(name), quant)]
    if len(matches) != 1:
        listed = ", ".join(matches or names) or "none"
        raise ModelFileError(f"hf:{spec_text}: {len(matches)} files of that quantization in {repo_id} ({listed})")
    return matches[0]


def _download(repo_id: str, filename: str) -> Path:
    """Fetch one file into the cache (huggingface_hub shows the progress bar),
    then check its sha256 against the one the hub publishes for it."""
    from huggingface_hub import HfApi, hf_hub_download

    try:
        path = Path(hf_hub_download(repo_id, filename, cache_dir=hf_cache_dir()))
        infos = HfApi().get_paths_info(repo_id, [filename])
    except Exception as error:  # offline, unknown repository or file, no permission
        raise ModelFileError(
            f"hf:{repo_id}/{filename} is not in the Hugging Face cache and could not be downloaded ({_reason(error)})"
        ) from None
    lfs = [getattr(info, "lfs", None) for info in infos]
    expected = next((getattr(entry, "sha256", None) for entry in lfs if entry is not None), None)
    if expected is not None and sha256_file(path) != expected:
        path.unlink(missing_ok=True)
        raise ModelFileError(f"hf:{repo_id}/{filename} does not match the hub's sha256; the download was removed")
    return path


def _reason(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def hf_models() -> list[tuple[str, Path]]:
    """(hf:OWNER/REPO/FILE, path) for every GGUF in the local Hugging Face cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(hf_cache_dir())
    except CacheNotFound:
        return []
    found = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for revision in repo.revisions:
            for f in revision.files:
                if f.file_name.endswith(".gguf"):
                    relative = Path(f.file_path).relative_to(revision.snapshot_path).as_posix()
                    found.append((f"{HF_PREFIX}{repo.repo_id}/{relative}", Path(f.file_path)))
    return sorted(set(found))
