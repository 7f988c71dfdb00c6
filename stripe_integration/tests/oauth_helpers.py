"""Drive the sandbox's consent page the way a person would: follow the app's redirect,
submit the Authorize / Deny form, and bring Stripe's redirect back to the app."""
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

CONNECT_URL = "/integrations/stripe/connect/"
SETTINGS_URL = "/integrations/stripe/"


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}
        self.buttons = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attrs.get("action")
        elif tag == "input" and attrs.get("name") and attrs.get("type") not in ("submit", "button"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif tag == "button" and attrs.get("name"):
            self.buttons[attrs["value"]] = attrs["name"]


def start(client):
    resp = client.get(CONNECT_URL)
    assert resp.status_code == 302, resp.content[:500]
    return resp["Location"]


def consent(authorize_url: str, decision: str = "authorize") -> str:
    """Submit the consent form; return the URL Stripe redirects the browser to."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text[:500]
    parser = _FormParser()
    parser.feed(page.text)
    data = dict(parser.fields)
    data[parser.buttons[decision]] = decision
    resp = requests.post(urljoin(authorize_url, parser.action), data=data, allow_redirects=False, timeout=10)
    assert resp.status_code in (302, 303), resp.text[:500]
    return resp.headers["Location"]


def back_to_app(client, redirect_url: str):
    parts = urlsplit(redirect_url)
    return client.get(parts.path, parse_qs(parts.query), follow=True)


def connect(client, decision: str = "authorize"):
    return back_to_app(client, consent(start(client), decision))
