"""`billing-service` (and `python -m billing_app`): Flask's command line for the app the
environment configures: `billing-service db upgrade`, `billing-service billing plans import
FILE`, `billing-service admin hash-password`, ..."""

from flask.cli import FlaskGroup

from billing_app import create_app

main = FlaskGroup(create_app=lambda: create_app())

if __name__ == "__main__":
    main()
