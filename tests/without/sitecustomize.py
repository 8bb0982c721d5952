"""Makes the packages named in $SCALING_BLOCK_IMPORTS (comma-separated) unimportable in this interpreter, as
in an accelerator image that lacks them (tests put this folder first on PYTHONPATH; see tests/helpers.py)."""

import importlib.abc
import importlib.util
import os
import sys

_BLOCKED = tuple(name for name in os.environ.get("SCALING_BLOCK_IMPORTS", "").split(",") if name)


class _Blocker(importlib.abc.MetaPathFinder):
    """Refuses every blocked top-level package and its submodules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked by the test)", name=fullname)
        return None


def _find_spec_unless_blocked(name, package=None, _find_spec=importlib.util.find_spec):
    """importlib.util.find_spec answering None for a blocked package, as for one that is not installed (libraries
    probe for optional packages this way, e.g. etils, which JAX's compilation cache and orbax use)."""
    absolute = importlib.util.resolve_name(name, package) if name.startswith(".") else name
    return None if absolute.split(".")[0] in _BLOCKED else _find_spec(name, package)


if _BLOCKED:
    sys.meta_path.insert(0, _Blocker())
    importlib.util.find_spec = _find_spec_unless_blocked
