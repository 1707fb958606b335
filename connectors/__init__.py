"""Connectors: pull events from the training centre and PLGN and publish them to Kafka."""
