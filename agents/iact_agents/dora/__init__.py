"""DORA metrics: event models and ingest parser (:mod:`.models`), pure metric functions
(:mod:`.metrics`) and the published DORA performance levels (:mod:`.benchmarks`)."""
