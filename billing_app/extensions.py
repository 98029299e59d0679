"""The Flask extension singletons, bound to an app in `create_app`."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from billing_app.api.openapi import BillingApi
from billing_app.db import Base

db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
api = BillingApi()
csrf = CSRFProtect()  # the console's forms; the API authenticates with bearer tokens
