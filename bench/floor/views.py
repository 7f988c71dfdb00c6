"""The floor of bench/webhooks.py: a view that only verifies the signature and inserts
one row, in the same app, settings, middleware and table as the real intake. Served only
by the bench (ROOT_URLCONF=bench.floor.urls); nothing in the app routes to it."""
import os
import uuid

from django.db import connection
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from stripe_integration.models import WebhookDelivery
from stripe_integration.webhooks.intake import SignatureError, verify_signature

SECRET = os.environ["BENCH_WEBHOOK_SECRET"]
_TABLE = connection.ops.quote_name(WebhookDelivery._meta.db_table)
_SQL = (f"INSERT INTO {_TABLE} (event_id, account, livemode, type, api_version, object_id, payload, source, "
        "received_at, status, attempts, error, traceback) "
        "VALUES (%s, '', false, 'floor', '', '', %s, 'webhook', %s, 'received', 0, '', '')")


@csrf_exempt
def floor(request):
    payload = request.body
    try:
        verify_signature(payload=payload, header=request.headers.get("Stripe-Signature"), secrets=[SECRET], tolerance=300)
    except SignatureError:
        return HttpResponse(status=400)
    with connection.cursor() as cursor:
        cursor.execute(_SQL, [f"evt_floor_{uuid.uuid4().hex}", payload.decode(), timezone.now()])
    return HttpResponse(status=200)
