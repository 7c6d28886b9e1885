from django.conf import settings
from django.conf.urls.static import static
from django.urls import path

from entries import views

urlpatterns = [
    path("", views.index, name="index"),
    path("api/entries/", views.api_entries, name="api-entries"),
    path("version/", views.version, name="version"),
    path("health/", views.health, name="health"),
]

# Serve uploaded media in development only (static() is a no-op when DEBUG is off).
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
