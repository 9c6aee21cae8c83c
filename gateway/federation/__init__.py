"""The federation: which providers serve a type, fan-out and merge, per-request loaders,
relationships read off the records.
"""
