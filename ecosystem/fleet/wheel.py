"""A wheel of the zapvisor this process runs, so a host gets exactly this version.

Made from the installed files themselves (an install from a wheel, or a checkout in
editable mode) and the installed distribution's metadata: no build tool, no network, and
the same code as here, byte for byte. The two files hatchling force-includes
(pyproject.toml) come from where this process finds them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import zipfile
from pathlib import Path

from ecosystem.errors import RemoteZapvisorError

DISTRIBUTION = "zapvisor"
PACKAGES = ("ecosystem", "runner", "tui")
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest time: the same files make the same wheel


def installed_version() -> str:
    return importlib.metadata.version(DISTRIBUTION)


def _package_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise RemoteZapvisorError(f"cannot find the installed {package} package to ship")
        base = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if not path.is_file() or _SKIP_DIRS & set(rel.parts) or path.suffix == ".pyc":
                continue
            files[f"{package}/{rel.as_posix()}"] = path.read_bytes()
    return files


def _forced_files() -> dict[str, bytes]:
    """What pyproject.toml force-includes, as the wheel would hold it."""
    from ecosystem.fleet.systemd import unit_template
    from ecosystem.supctl.render import _template_text

    return {
        "ecosystem/supctl/supervisord.conf.j2": _template_text().encode("utf-8"),
        "ecosystem/fleet/zapvisor.service.in": unit_template().encode("utf-8"),
    }


def _digest(data: bytes) -> str:
    raw = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def build_wheel(out_dir: Path) -> Path:
    """Write `zapvisor-<version>-py3-none-any.whl` into ``out_dir``; its path."""
    dist = importlib.metadata.distribution(DISTRIBUTION)
    version = dist.version
    info = f"{DISTRIBUTION}-{version}.dist-info"
    files = _package_files()
    files.update(_forced_files())
    metadata = dist.read_text("METADATA")
    entry_points = dist.read_text("entry_points.txt")
    if not metadata or not entry_points:
        raise RemoteZapvisorError("the installed zapvisor has no metadata to build a wheel from")
    files[f"{info}/METADATA"] = metadata.encode("utf-8")
    files[f"{info}/entry_points.txt"] = entry_points.encode("utf-8")
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: zapvisor\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{DISTRIBUTION}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, _EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return wheel
