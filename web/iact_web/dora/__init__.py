"""DORA dashboard: the four keys, trends, drill-down and CSV."""
