"""Tally: the Chalice app. Thin on purpose: configuration, error shaping, surfaces, and three background
functions (the expiry sweep on a schedule, journal events from the entries table's stream, idle logs drained
from the accounts table's stream).

The one place that reads configuration: the services are built once per container (`chalicelib/composition.py`)
and handed to every surface, the authorizer and the background functions by `serve`."""
from chalice import Chalice, Rate

from chalicelib import composition, config
from chalicelib.core import drains, events
from chalicelib.core.expiry import sweep
from chalicelib.surfaces import (
    accounts,
    asper_wallet,
    console,
    docs,
    holds_points_v1,
    ledger_v1,
    points_app,
    points_tracker,
    wallet_app,
)
from chalicelib.web import access, errors, logs

settings = config.load()
app = Chalice(app_name="tally")
logs.configure(settings.log_level)
app.register_middleware(logs.log_requests, "http")  # first: it sees the final, shaped response
app.register_middleware(errors.shape_chalice_errors, "http")

app.register_blueprint(access.blueprint)  # the API-key authorizer

# The surfaces of each configurable mount (`TALLY_MOUNT_<NAME>`), in the order the OpenAPI document lists them.
SURFACES = {"accounts": (accounts.surface,), "points_tracker": (points_tracker.surface,),
            "points_app": (points_app.surface,), "wallet_app": (wallet_app.surface,),
            "asper_wallet": (asper_wallet.surface,), "v1": (ledger_v1.surface, holds_points_v1.surface)}
mounted = tuple((prefix, surface) for name, prefix in settings.mounts.items() if prefix is not None
                for surface in SURFACES[name])
for prefix, surface in mounted:
    keyed = surface.keyed or (settings.seed_auth == "api_key" and not surface.own_authorization)
    surface.mount(app, prefix, access.key_authorizer if keyed else None)
docs.mounted = mounted
docs.surface.mount(app, None)
if not settings.deployed and docs.page_available():
    app.register_blueprint(docs.page)  # make run's browsable document (dev-only files)
if settings.mounts["v1"] is not None:  # the operator console reads /v1: served wherever /v1 is, deployed too
    console.v1_path = settings.mounts["v1"] + "/v1"
    app.register_blueprint(console.page)


def serve(built: composition.Services) -> None:
    """Serve every request, scheduled run and stream batch from `built` (tests hand in services of their own)."""
    global services
    services = built
    access.keys = built.api_keys
    for surface in (*(surface for group in SURFACES.values() for surface in group), docs.surface):
        surface.services = built


services: composition.Services
serve(composition.build(settings))


@app.schedule(Rate(1, unit=Rate.MINUTES), name="expire_due")
def expire_due(event):
    """Complete spends a crash left in parts; expire due points lots and holds (each an entry in the journal)."""
    swept = sweep(services.v1_book, services.clock(), points_book=services.points_book)
    return {"lots": swept.lots, "holds": swept.holds, "settled": swept.settled}


@app.on_dynamodb_record(stream_arn=settings.entries_stream_arn, batch_size=100, name="publish_entries")
def publish_entries(event):
    """Publish every new journal entry to EventBridge, once."""
    published = events.publish(_records(event), events.client(services.settings.region), services.settings.event_bus)
    return {"sent": published.sent, "skipped": published.skipped}


@app.on_dynamodb_record(stream_arn=settings.accounts_stream_arn, batch_size=drains.BATCH_SIZE, name="drain_logs")
def drain_logs(event):
    """Move the postings an account's last writes left in its log into the journal (and so to the event bus)."""
    drained = drains.drain_logs(_records(event), services.drain_budget)
    return {"settled": drained.settled, "busy": drained.busy}


def _records(event):
    """A stream batch's records as the core reads them (Lambda's shape: the event and the new image)."""
    return ({"eventName": record.event_name, "dynamodb": {"NewImage": record.new_image}} for record in event)
