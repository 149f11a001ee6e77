"""The pinhole client's guards that need no router: where it may send a probe address's requests,
and how the router's refusals read. Against a real router (Debian's miniupnpd): the lab tests."""
from __future__ import annotations

import asyncio

import pytest

from appliance.probe import pinholes
from appliance.probe.pinholes import RouterError, require_on_link

PROBE = "2001:db8:7:1:8f2e:11aa:3c4d:5e6f"


@pytest.mark.parametrize("url", [
    "http://[fe80::1]:5000/rootDesc.xml",
    "http://[fe80::1%25eth0]:5000/rootDesc.xml",
    "http://[2001:db8:7:1::1]:5000/ctl/IP6FCtl",
])
def test_the_router_on_the_link_is_asked(url):
    require_on_link(url, PROBE)


@pytest.mark.parametrize("url, said", [
    ("http://[2001:db8:99::1]:5000/rootDesc.xml", "2001:db8:99::1, off the LAN's link"),
    ("http://192.0.2.1:5000/rootDesc.xml", "'192.0.2.1', not to an IPv6 address on the LAN"),
    ("http://router.example:5000/rootDesc.xml", "'router.example', not to an IPv6 address"),
    ("http://[2001:db8:7:2::1]/x", "off the LAN's link"),
])
def test_an_answer_pointing_elsewhere_is_not_followed(url, said):
    with pytest.raises(RouterError, match="not followed") as caught:
        require_on_link(url, PROBE)
    assert said in str(caught.value)


def test_the_requester_refuses_before_anything_is_sent():
    sent = []

    class Library:
        async def async_http_request(self, http_request):
            sent.append(http_request.url)
            return "answer"

    requester = pinholes._on_link_requester(Library)()
    requester.source = PROBE
    request = type("Request", (), {"url": "http://[2001:db8:7:1::1]:5000/rootDesc.xml"})()
    assert asyncio.run(requester.async_http_request(request)) == "answer"
    request.url = "http://[2001:db8:bad::1]:5000/rootDesc.xml"
    with pytest.raises(RouterError):
        asyncio.run(requester.async_http_request(request))
    assert sent == ["http://[2001:db8:7:1::1]:5000/rootDesc.xml"]


def test_refusals_read_as_what_they_mean():
    class UpnpActionError(Exception):
        error_code = "606"

    said = pinholes._explained("AddPinhole", UpnpActionError("Action not authorized"))
    assert said.code == 606 and "ports 1024 and up" in str(said)
    assert str(pinholes._explained("AddPinhole", OSError("no route"))) == "AddPinhole failed: no route"
