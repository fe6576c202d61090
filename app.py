"""Tally: the Chalice app. Thin on purpose: configuration, error shaping, surfaces."""
from chalice import Chalice

from chalicelib import config
from chalicelib.surfaces import accounts, asper_wallet, docs, points_app, points_tracker, wallet_app
from chalicelib.web import errors, logs

settings = config.load()
app = Chalice(app_name="tally")
logs.configure(settings.log_level)
app.register_middleware(logs.log_requests, "http")  # first: it sees the final, shaped response
app.register_middleware(errors.shape_chalice_errors, "http")

SURFACES = {"accounts": accounts.surface, "points_tracker": points_tracker.surface, "points_app": points_app.surface,
            "wallet_app": wallet_app.surface, "asper_wallet": asper_wallet.surface}
for name, prefix in settings.mounts.items():
    if prefix is not None:
        app.register_blueprint(SURFACES[name].blueprint, url_prefix=prefix or None)
docs.mounted = tuple((prefix, SURFACES[name]) for name, prefix in settings.mounts.items() if prefix is not None)
app.register_blueprint(docs.surface.blueprint)
