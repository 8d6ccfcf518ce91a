"""Where the gateway listens and which URLs the tablets are told."""

from __future__ import annotations

import pytest
from kiln_devstack.network import HostError, local_host, parse_host, tablet_urls


def test_host_is_an_ip_address() -> None:
    assert parse_host(" 0.0.0.0 ") == "0.0.0.0"
    assert parse_host("192.168.1.20") == "192.168.1.20"
    with pytest.raises(HostError, match="KILN_GATEWAY_HOST must be an IP address"):
        parse_host("my laptop")


def test_loopback_offers_the_room_nothing() -> None:
    assert tablet_urls("127.0.0.1", 8080) == []


def test_one_address_is_the_one_url() -> None:
    assert tablet_urls("192.168.1.20", 8080) == ["http://192.168.1.20:8080"]
    assert local_host("192.168.1.20") == "192.168.1.20"


def test_every_address_lists_no_loopback_and_is_reached_locally_on_loopback() -> None:
    urls = tablet_urls("0.0.0.0", 8080)
    assert all(u.startswith("http://") and u.endswith(":8080") for u in urls)
    assert not [u for u in urls if "127." in u]
    assert local_host("0.0.0.0") == "127.0.0.1"
