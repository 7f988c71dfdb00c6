"""URLconf of the bench's floor (ROOT_URLCONF=bench.floor.urls): the webhook path only."""
from django.urls import path

from bench.floor.views import floor

urlpatterns = [path("stripe/webhook/", floor)]
