//! Room links to print at start-up (one per LAN address, then the loopback one), and the
//! names this host is reached by.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use multiverse_core::ids::RoomId;

/// The addresses at which a listener bound to `bound` can be reached: every non-loopback
/// interface address of the matching family when bound to an unspecified address (0.0.0.0
/// or ::), else just the bound one; the loopback address comes last.
pub fn reachable_addresses(bound: IpAddr, interfaces: &[IpAddr]) -> Vec<IpAddr> {
    if !bound.is_unspecified() {
        return vec![bound];
    }
    let wanted_v6 = bound.is_ipv6();
    let mut out: Vec<IpAddr> = interfaces
        .iter()
        .copied()
        .filter(|ip| !ip.is_loopback() && !is_link_local(ip))
        .filter(|ip| wanted_v6 || ip.is_ipv4())
        .collect();
    out.sort();
    out.dedup();
    out.push(if wanted_v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    });
    out
}

/// `http://<address>:<port>/r/<room>` for each address.
pub fn room_links(addresses: &[IpAddr], port: u16, room: &RoomId) -> Vec<String> {
    links("http", addresses, port, room)
}

/// `https://<address>:<port>/r/<room>` for each address.
pub fn https_room_links(addresses: &[IpAddr], port: u16, room: &RoomId) -> Vec<String> {
    links("https", addresses, port, room)
}

fn links(scheme: &str, addresses: &[IpAddr], port: u16, room: &RoomId) -> Vec<String> {
    addresses
        .iter()
        .map(|ip| format!("{scheme}://{}/r/{room}", SocketAddr::new(*ip, port)))
        .collect()
}

/// The host name (`$HOSTNAME`, else `/etc/hostname`, else the kernel's), if one is set.
pub fn host_name() -> Option<String> {
    let files = ["/etc/hostname", "/proc/sys/kernel/hostname"];
    std::env::var("HOSTNAME")
        .into_iter()
        .chain(files.iter().filter_map(|f| std::fs::read_to_string(f).ok()))
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
}

/// The host's interface addresses (empty if they cannot be listed).
pub fn interface_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::warn!("cannot list network interfaces: {e}");
            Vec::new()
        }
    }
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn unspecified_v4_lists_lan_addresses_then_loopback() {
        let ifs = [
            ip("127.0.0.1"),
            ip("192.168.1.20"),
            ip("10.0.0.7"),
            ip("fe80::1"),
            ip("169.254.1.1"),
        ];
        let got = reachable_addresses(ip("0.0.0.0"), &ifs);
        assert_eq!(got, [ip("10.0.0.7"), ip("192.168.1.20"), ip("127.0.0.1")]);
        let room = RoomId::new("sandbox").unwrap();
        assert_eq!(
            room_links(&got, 8080, &room),
            [
                "http://10.0.0.7:8080/r/sandbox",
                "http://192.168.1.20:8080/r/sandbox",
                "http://127.0.0.1:8080/r/sandbox"
            ]
        );
    }

    #[test]
    fn specific_and_v6_binds() {
        assert_eq!(
            reachable_addresses(ip("127.0.0.1"), &[ip("192.168.1.2")]),
            [ip("127.0.0.1")]
        );
        let v6 = reachable_addresses(ip("::"), &[ip("192.168.1.2"), ip("fd00::2")]);
        assert_eq!(v6, [ip("192.168.1.2"), ip("fd00::2"), ip("::1")]);
        let room = RoomId::new("a").unwrap();
        assert_eq!(room_links(&[ip("::1")], 80, &room), ["http://[::1]:80/r/a"]);
        assert_eq!(
            https_room_links(&[ip("192.168.1.2"), ip("::1")], 8443, &room),
            ["https://192.168.1.2:8443/r/a", "https://[::1]:8443/r/a"]
        );
    }
}
