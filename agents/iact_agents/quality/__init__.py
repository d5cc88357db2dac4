"""Data quality of the DORA events: checks (:mod:`.checks`), robust anomaly detection on daily series
(:mod:`.anomaly`) and the documented 0-100 score (:mod:`.score`)."""
