"""What connects the pipeline to the world: settings, Kafka, PostgreSQL, telemetry, local stack, CLI."""
