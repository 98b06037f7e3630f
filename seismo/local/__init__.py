"""Local Kafka and Redis for development, the demo and CI."""
