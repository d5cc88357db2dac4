"""The log collector: files and the systemd journal into Cassandra, lossless and duplicate-free.

``records`` (record model and pure parsers), ``position`` (file identity, row keys, atomic offset store),
``source`` (the batch a reader hands out), ``tailer`` (file reader), ``journal`` (journal reader), ``sink``
(Cassandra writer), ``daemon`` (the loop), ``quarantine`` (poison records), ``cli`` (``iact-agent collect``).
"""
