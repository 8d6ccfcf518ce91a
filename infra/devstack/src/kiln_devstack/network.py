"""Where the gateway listens, and the addresses the tablets in the room can use to reach it."""

from __future__ import annotations

import io
import ipaddress
import socket

import psutil
import segno

LOOPBACK = "127.0.0.1"
# Interfaces of containers and VMs on this machine: tablets in the room cannot reach these, so
# their URLs are listed last (never hidden: a school's set-up may be unusual).
_VIRTUAL_PREFIXES = ("docker", "br-", "veth", "virbr", "lxc", "lxd", "cni", "podman", "vmnet")


class HostError(ValueError):
    pass


def parse_host(value: str) -> str:
    """KILN_GATEWAY_HOST: an IP address (``0.0.0.0`` for every IPv4 address of the machine)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise HostError(
            f"KILN_GATEWAY_HOST must be an IP address such as 0.0.0.0 (every address of this "
            f"machine) or 192.168.1.20, got {value!r}"
        ) from None


def is_every_address(host: str) -> bool:
    return ipaddress.ip_address(host).is_unspecified


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def url_host(host: str) -> str:
    return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host


def local_host(host: str) -> str:
    """The address this machine itself uses to reach a gateway listening on ``host``."""
    if is_every_address(host):
        return LOOPBACK if ipaddress.ip_address(host).version == 4 else "::1"
    return host


def _room_addresses(version: int) -> list[tuple[bool, str, str]]:
    """(virtual?, address, interface) of each interface that is up, loopback and link-local
    (which a browser cannot open without a zone id) left out."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    stats = psutil.net_if_stats()
    found = []
    for name, addresses in psutil.net_if_addrs().items():
        if name in stats and not stats[name].isup:
            continue
        for address in addresses:
            if address.family != family:
                continue
            ip = ipaddress.ip_address(address.address.split("%")[0])
            if ip.is_loopback or ip.is_link_local:
                continue
            found.append((name.startswith(_VIRTUAL_PREFIXES), str(ip), name))
    return sorted(found, key=lambda a: (a[0], ipaddress.ip_address(a[1]).packed))


def tablet_urls(host: str, port: int) -> list[str]:
    """Every URL another device in the room can open: each non-loopback address when the
    gateway listens on all of them, the one address when it listens on one, none on loopback."""
    if is_loopback(host):
        return []
    if not is_every_address(host):
        return [f"http://{url_host(host)}:{port}"]
    versions = [4] if ipaddress.ip_address(host).version == 4 else [4, 6]
    return [
        f"http://{url_host(address)}:{port}"
        for version in versions
        for _, address, _ in _room_addresses(version)
    ]


def terminal_qr(text: str) -> str:
    """A QR code of ``text`` in Unicode half blocks, for a terminal with a dark background: the
    blocks are the light modules, the background the dark ones."""
    out = io.StringIO()
    segno.make(text, error="m").terminal(out=out, compact=True)
    return out.getvalue()
