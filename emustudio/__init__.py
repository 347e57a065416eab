"""emustudio: Amazon EMR Studio, self-hosted and local."""

__version__ = "0.1.0"
