"""Persisted operations: automatic persisted queries and the safelist a deployment may fix before
it starts.
"""
