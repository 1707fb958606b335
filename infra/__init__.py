"""What connects the pipeline to the world: settings, Kafka, PostgreSQL, telemetry, the local stack, the CLI."""
