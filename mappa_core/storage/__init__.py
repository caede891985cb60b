"""Storage, the one door to the database: the tables and their migrations, loading the
records, the import, the outbox, what people recorded, audits and SCR actions, database
URLs and the demo day's copy. It may use the rules' vocabulary, never the bot; the bot
reaches the database only through it (tests/architecture/test_import_graph.py)."""
