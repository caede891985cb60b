"""The rules of SPEC sections 2-4: pure functions of frames and a date (no database,
clock or environment; tests/architecture/test_import_graph.py checks it)."""
