"""A wheel of ociish carries what an installed ociish needs: the schemas and the script."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_the_wheel_holds_the_schemas_and_the_ociish_script(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in ("ociish", "schemas", "bin"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("ociish-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    schemas = {f"ociish/schemas/{p.name}" for p in (REPO / "schemas").glob("*.schema.json")}
    assert len(schemas) == 4 and schemas <= names, sorted(names)
    assert any(name.endswith(".data/scripts/ociish") for name in names), sorted(names)


def test_the_cli_caches_its_bytecode_whatever_the_environment_says(tmp_path: Path) -> None:
    """An editable install is never byte-compiled by pip, and PYTHONDONTWRITEBYTECODE is
    common: the script and `python -m ociish` still leave the bytecode of what they load."""
    shutil.copytree(REPO / "ociish", tmp_path / "ociish", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    package = tmp_path / "ociish"
    for launcher in ([str(REPO / "bin" / "ociish")], ["-m", "ociish"]):
        for cache in package.rglob("__pycache__"):
            shutil.rmtree(cache)
        result = subprocess.run([sys.executable, *launcher, "--root", str(tmp_path / "root"), "state", "none"],
                                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and "none" in result.stderr, result
        cached = {f"{p.parent.parent.name}/{p.name.split('.')[0]}" for p in package.rglob("*.pyc")}
        assert {"cli/__init__", "cli/argv", "ociish/errors", "ociish/log"} <= cached, (launcher, sorted(cached))
