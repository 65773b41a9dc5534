"""Storage: typed SQLAlchemy 2.x models, the database and its unit of work, Alembic migrations."""
