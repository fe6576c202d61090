"""Tally: the Chalice app. Thin on purpose: configuration, error shaping, surfaces, and two background
functions (the expiry sweep on a schedule, journal events from the entries table's stream)."""
from chalice import Chalice, Rate

from chalicelib import config
from chalicelib.surfaces import accounts, asper_wallet, docs, ledger_v1, points_app, points_tracker, wallet_app
from chalicelib.web import access, errors, logs

settings = config.load()
app = Chalice(app_name="tally")
logs.configure(settings.log_level)
app.register_middleware(logs.log_requests, "http")  # first: it sees the final, shaped response
app.register_middleware(errors.shape_chalice_errors, "http")

app.register_blueprint(access.blueprint)  # the API-key authorizer

SURFACES = {"accounts": accounts.surface, "points_tracker": points_tracker.surface, "points_app": points_app.surface,
            "wallet_app": wallet_app.surface, "asper_wallet": asper_wallet.surface, "v1": ledger_v1.surface}
for name, prefix in settings.mounts.items():
    if prefix is not None:
        surface = SURFACES[name]
        keyed = surface.keyed or (settings.seed_auth == "api_key" and not surface.own_authorization)
        surface.mount(app, prefix, access.key_authorizer if keyed else None)
docs.mounted = tuple((prefix, SURFACES[name]) for name, prefix in settings.mounts.items() if prefix is not None)
docs.surface.mount(app, None)
if not settings.deployed and docs.page_available():
    app.register_blueprint(docs.page)  # make run's browsable document (dev-only files)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="expire_due")
def expire_due(event):
    """Complete spends a crash left in parts; expire due points lots and holds (each an entry in the journal)."""
    from chalicelib.core.expiry import sweep

    swept = sweep(ledger_v1.services_of_book, ledger_v1.clock())
    return {"lots": swept.lots, "holds": swept.holds, "settled": swept.settled}


@app.on_dynamodb_record(stream_arn=settings.entries_stream_arn, batch_size=100, name="publish_entries")
def publish_entries(event):
    """Publish every new journal entry to EventBridge, once."""
    from chalicelib.core import events

    records = ({"eventName": record.event_name, "dynamodb": {"NewImage": record.new_image}} for record in event)
    published = events.publish(records, events.client(settings.region), settings.event_bus)
    return {"sent": published.sent, "skipped": published.skipped}
