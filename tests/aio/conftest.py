"""The loops the asyncio programs run on."""

from __future__ import annotations

from typing import Any

import pytest

from .programs import UVLOOP


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_prelude(request: Any) -> str:
    """What to prepend to a program to run it on each loop: asyncio's own, then uvloop's."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop has no wheel for this platform")
        return UVLOOP
    return ""
