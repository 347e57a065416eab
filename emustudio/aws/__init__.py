"""The AWS wire, service-agnostic: models, protocols, SigV4 and the error family.

Nothing in this room imports anything else of emustudio's.
"""
