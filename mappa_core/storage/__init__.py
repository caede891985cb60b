"""Storage: the tables, their migrations, loading, import, the outbox and what people
recorded. It may use the rules' vocabulary, never the bot."""
