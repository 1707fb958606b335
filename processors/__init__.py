"""Processors: consume events, compute the monitoring indicators, store and publish them."""
