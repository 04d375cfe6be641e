"""What setup.py installs: the package (with its ``py.typed`` marker), the twistd plugins
inside Twisted's plugin directory (and nothing else of Twisted's), and the console script.

setup.py is run on a copy of the source (``build`` and ``egg_info`` into a temporary
directory), so the checkout gets no build/ or egg-info/ directory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_setup_installs_the_plugins_and_the_console_script(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "dropin.cache")
    for package in ("pyro", "twisted"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    (tmp_path / "egg").mkdir()
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build", "--build-base", str(tmp_path / "build"),
         "egg_info", "--egg-base", str(tmp_path / "egg")],
        cwd=source, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lib = tmp_path / "build" / "lib"
    installed = sorted(str(path.relative_to(lib)) for path in lib.rglob("*")
                       if path.is_file() and path.parts[len(lib.parts)] == "twisted")
    assert installed == ["twisted/plugins/pyro_plugins.py"]  # no twisted/__init__.py of ours
    assert (lib / "pyro" / "cli" / "tap.py").is_file()
    assert (lib / "pyro" / "py.typed").is_file()  # PEP 561: the type hints are for users too
    (entry_points,) = (tmp_path / "egg").glob("*.egg-info/entry_points.txt")
    assert entry_points.read_text().split() == ["[console_scripts]", "twisted-pyro", "=",
                                                "pyro.cli:main"]
