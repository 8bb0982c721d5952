"""Makes the packages named in $SCALING_BLOCK_IMPORTS (comma-separated) unimportable in this interpreter, as
in an accelerator image that lacks them (tests put this folder first on PYTHONPATH; see tests/helpers.py)."""

import importlib.abc
import os
import sys

_BLOCKED = tuple(name for name in os.environ.get("SCALING_BLOCK_IMPORTS", "").split(",") if name)


class _Blocker(importlib.abc.MetaPathFinder):
    """Refuses every blocked top-level package and its submodules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked by the test)", name=fullname)
        return None


if _BLOCKED:
    sys.meta_path.insert(0, _Blocker())
