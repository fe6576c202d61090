"""Create Tally's DynamoDB tables from the PynamoDB models (idempotent).

Usage: python -m tools.create_tables   (endpoint, region and table prefix from the environment)
"""
from chalicelib.config import load
from chalicelib.core import models


def main() -> None:
    settings = load()
    models.bind(settings)
    created = models.create_tables()
    where = settings.dynamodb_endpoint or f"AWS {settings.region}"
    print(f"tables at {where}: " + (", ".join(created) + " created" if created else "all present"))


if __name__ == "__main__":
    main()
