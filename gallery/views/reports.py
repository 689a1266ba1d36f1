"""The report form readers reach from a gallery's footer, and its thank-you page."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.decorators import ratelimit

from gallery.forms import ReportForm
from gallery.models import Gallery
from gallery.ratelimits import client_ip, describe_rate
from gallery.services import reports
from gallery.views.public import public_gallery


def _report_rate(group: str, request: HttpRequest) -> str:
    """Rate for django-ratelimit, read per request so a changed setting applies at once."""
    return settings.REPORT_RATE_LIMIT


@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=_report_rate, method="POST", block=False)
def gallery_report(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """The report form of a public gallery (404 for any other): reason, details, optional email.

    GET ``?url=<gallery page>`` (from the footer's Report link, via ``/_report`` on the
    gallery origin) names the page reported. POST (CSRF-checked by the middleware) records
    the report with ``reports.record_report`` and redirects to the thank-you page;
    invalid input gets the form again with its errors (400); more than
    ``REPORT_RATE_LIMIT`` reports from one address get it again with the reader's input
    kept and the limit explained (429).
    """
    gallery = public_gallery(gallery_id)
    if request.method != "POST":
        form = ReportForm(initial={"url": request.GET.get("url", "")}, gallery=gallery)
        return _report_page(request, gallery, form)
    form = ReportForm(request.POST, gallery=gallery)
    if getattr(request, "limited", False):
        form.add_error(
            None,
            f"Too many reports from your address: the limit is {describe_rate(settings.REPORT_RATE_LIMIT)}. "
            "Your report was not sent; try again later. What you wrote is still below.",
        )
        return _report_page(request, gallery, form, status=429)
    if not form.is_valid():
        return _report_page(request, gallery, form, status=400)
    data = form.cleaned_data
    reports.record_report(
        gallery,
        reason=data["reason"],
        details=data["details"].strip(),
        email=data["email"],
        reporter_key=reports.reporter_key_for(client_ip(request)),
        page_url=data["url"],
        by=request.user,
    )
    return redirect("gallery:report-thanks", gallery.id)


def _report_page(request: HttpRequest, gallery: Gallery, form: ReportForm, status: int = 200) -> HttpResponse:
    context = {"gallery": gallery, "form": form, "page_url": form.reported_page()}
    return render(request, "gallery/report.html", context, status=status)


@require_GET
def gallery_report_thanks(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """The thank-you page after a report. Not limited to public galleries: a report may just have taken this one down."""
    if not Gallery.objects.filter(pk=gallery_id).exists():
        raise Http404("No gallery has this address.")
    return render(request, "gallery/report_thanks.html", {"gallery_id": gallery_id})
