"""The event contract: versioned event models, JSON Schemas, the topic catalogue."""
