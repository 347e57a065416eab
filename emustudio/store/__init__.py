"""The store: SQLModel tables and the engine that runs every transaction off the event loop."""

from emustudio.store.engine import Store

__all__ = ["Store"]
