"""Running scenarios: one run with its clean-run comparison, shards, sweeps, live runs,
benchmarks.

`swarm.run(...)` is also the Python API's one run (`swarm.run.api.run`): this package's
module object is callable, because importing any of its modules makes `swarm.run` this
package, whatever the top-level package says.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        from swarm.run.api import run

        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
