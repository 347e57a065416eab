"""emustudio for your tests: a real gateway per test session, as pytest fixtures.

Installing emustudio registers the plugin (entry point ``pytest11``); the fixtures are prefixed
``emu_``. See ``examples/pytest`` for a project that uses them.
"""

from emustudio.testing.gateway import GatewayProcess

__all__ = ["GatewayProcess"]
