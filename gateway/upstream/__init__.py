"""Reaching a provider: one httpx client each, its auth flows, the traffic layers around its
transport, and the budgets it sets.
"""
