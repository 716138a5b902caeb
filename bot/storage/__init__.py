"""Storage: SQLAlchemy 2 async models, engine set-up, migrations and repositories."""
