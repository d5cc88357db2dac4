"""Log search over Cassandra through the read-only reader role."""
