"""The local Apache Kafka broker: its pinned jars (`pom.xml`), their cache, and the single KRaft node."""
