"""swarm: a deterministic fleet emulator.

Thousands of asyncio agents exchange messages over an MQTT-semantics broker (embedded,
in virtual time, or a real one), running sans-I/O gossip and consensus cores.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("swarm-fleet")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
