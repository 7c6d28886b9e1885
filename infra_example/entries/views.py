import json
import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from ledger.version import APP_VERSION

from .forms import EntryForm
from .models import Entry

logger = logging.getLogger(__name__)


@require_http_methods(["GET", "POST"])
def index(request):
    """The ledger page: list entries, and add one through a CSRF-protected form."""
    form = EntryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("index")
    return render(
        request,
        "entries/index.html",
        {
            "entries": Entry.objects.all(),
            "form": form,
            "version": APP_VERSION,
            "release": settings.RELEASE,
        },
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def api_entries(request):
    """GET: list entries as JSON. POST: create one from form field or JSON body `text`."""
    if request.method == "GET":
        return JsonResponse(list(Entry.objects.values("id", "text")), safe=False)

    if request.content_type == "application/json":
        try:
            data = json.loads(request.body)
        except ValueError:
            return JsonResponse({"error": "invalid JSON body"}, status=400)
        if not isinstance(data, dict):
            return JsonResponse({"error": "expected a JSON object"}, status=400)
    else:
        data = request.POST
    form = EntryForm(data)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    entry = form.save()
    return JsonResponse({"id": entry.id, "text": entry.text}, status=201)


@require_GET
def version(request):
    """Which code is serving: polled by load tests across deploys."""
    return HttpResponse(f"{APP_VERSION}\n", content_type="text/plain")


@require_GET
def health(request):
    """Health check used by djaploy after a deploy: proves the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.exception("health check: database unavailable")
        return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
