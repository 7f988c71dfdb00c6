"""When a view answers with a fragment instead of its whole page (htmx, issue 14).

An htmx request (`HX-Request: true`, read by django_htmx's middleware into
`request.htmx`) that swaps part of a page gets that part alone; every other request,
including htmx's own history restore after a cache miss (it needs the whole page), gets
the whole page, so each page works without JavaScript. Views that answer both ways send
`Vary: HX-Request` so that no cache hands one in place of the other.
"""


def htmx_fragment(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request
