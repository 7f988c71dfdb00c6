"""Liveness: the process serves requests. It touches nothing else, so a database or Redis
outage makes /health/ready/ red (take the host out of rotation) without making the
orchestrator restart processes that are fine."""
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


@never_cache
def liveness(request):
    return JsonResponse({"status": "ok"})
