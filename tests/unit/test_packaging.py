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
