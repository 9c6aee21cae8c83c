"""What the gateway tells its operators: logs, Prometheus metrics, traces, and the request id that
ties them together.
"""
