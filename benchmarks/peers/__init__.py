"""Peer baselines of the processors benchmark: CVF-01 and CVF-02 per country and month, at least once.

Two small consumers compute the same two indicators as alcance from the same stream and broker, so the
benchmark can set alcance's throughput beside theirs: a Quix Streams application (`quix_app`) and a
hand-written aiokafka + asyncpg loop (`plain_loop`). They run as subprocesses of a virtualenv of their own
(`environment.py`, from the exact versions in `requirements.txt`), because Quix Streams and
confluent-kafka are not alcance's dependencies. Nothing in this package may import alcance's packages:
the peers' modules run in that other virtualenv.
"""
