"""Simulated inference servers (a queueing model behind real-looking /metrics) and the capacity simulation."""
