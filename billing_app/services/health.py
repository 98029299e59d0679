from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from billing_app.errors import DatabaseUnavailable
from billing_app.extensions import db


def check_database() -> None:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        raise DatabaseUnavailable() from None
