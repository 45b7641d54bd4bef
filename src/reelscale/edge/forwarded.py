"""The client's address behind trusted proxies, from `X-Forwarded-For`.

Behind a load balancer or nginx every request arrives from the balancer, so per-address
rate limits would put every client in one bucket. The header says who the client was, but
anyone can send it: it is believed only when the TCP peer is a proxy we trust
(`REELSCALE_TRUSTED_PROXIES`, CIDRs; empty trusts nobody).

The list is read right to left, as nginx's `real_ip_recursive` does: the rightmost entry
was appended by the trusted peer, each further trusted hop vouches for the entry before
it, and the first untrusted address is the client. Entries left of it were written by the
client and are ignored. A header that is malformed anywhere the walk reaches, too long or
with too many hops gives the peer's own address: a hostile header can never choose its
bucket, and never causes an error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Well past any real chain of proxies; a longer header is a client's invention.
MAX_FORWARDED_CHARS = 2048
MAX_FORWARDED_HOPS = 32


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) as networks; a ValueError names the bad entry."""
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        text = cidr.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IP address or CIDR, e.g. 10.0.0.0/8") from None
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """One address as proxies write it (`1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`, with or
    without a port), IPv4-mapped IPv6 as IPv4; None when it is anything else."""
    text = text.strip()
    if text.startswith("["):
        text, sep, _port = text[1:].partition("]")
        if not sep:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """Which peers may speak for their clients, and the client address they speak for."""

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.networks = parse_networks(cidrs)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        """Whether `address` (a peer or a hop) is inside a trusted network."""
        if not self.networks:
            return False
        parsed = parse_address(address)
        return parsed is not None and self._trusted(parsed)

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The address to account this request to: the peer unless it is trusted and
        `forwarded_for` (every X-Forwarded-For line, joined by commas) names a client."""
        return self.chain(peer, forwarded_for)[0]

    def chain(self, peer: str, forwarded_for: str | None) -> list[str]:
        """The hops that can be vouched for, client first and `peer` last: `[peer]` alone
        unless the peer is trusted and the header is well formed where the walk reads it.

        This is also what a proxy should forward upstream as X-Forwarded-For: the entries
        left of the client are the client's own words and are dropped."""
        if forwarded_for is None or not self.trusts(peer):
            return [peer]
        if len(forwarded_for) > MAX_FORWARDED_CHARS:
            return [peer]
        hops = forwarded_for.split(",")
        if len(hops) > MAX_FORWARDED_HOPS:
            return [peer]
        vouched: list[str] = [peer]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return [peer]
            vouched.append(str(address))
            if not self._trusted(address):
                break
        # Ended without an untrusted hop: every hop is a proxy of ours, and the leftmost is
        # as far back as anyone can vouch for.
        vouched.reverse()
        return vouched
