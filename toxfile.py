"""tox's inline plugin: offer tox every Python that pyenv installed.

pyenv's shims (``python3.12`` on PATH) answer only for the versions ``pyenv global`` or
``pyenv local`` selected, so tox would skip py310-py313 on a machine that has them all under
``$PYENV_ROOT/versions``. This does what ``tox --discover`` does with each of them: discovery
still picks the interpreter by version, and a machine without pyenv sees no change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tox.plugin import impl


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = sorted(str(python) for python in root.glob("versions/3.*/bin/python3"))
    state.conf.options.discover = [*state.conf.options.discover, *installed]
