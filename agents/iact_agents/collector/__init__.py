"""The log collector: files and the systemd journal into Cassandra, lossless and duplicate-free.

``records`` (record model and pure parsers), ``position`` (file identity, row keys, atomic offset store),
``tailer`` (file and journal readers), ``sink`` (Cassandra writer), ``daemon`` (the loop), ``cli``
(``iact-agent collect``).
"""
