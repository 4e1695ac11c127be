//! From a captured frame to the TCP segment inside it.
//!
//! etherparse does the IP and TCP work, leniently, so that a packet cut
//! short by the snap length still yields what was captured. The link layers
//! it does not know (Linux cooked v2, BSD loopback) are stripped here first.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    ip_number, EtherType, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket, TransportSlice,
};

use crate::pcapng::LinkType;

/// One TCP segment, borrowed from its packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    /// The acknowledgment number, when the ACK flag is set.
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    /// The captured payload.
    pub payload: &'a [u8],
    /// Payload bytes the IP header announces beyond what was captured
    /// (the packet was cut by the snap length).
    pub missing: u32,
}

/// Why a packet holds no TCP segment for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A link type we do not parse.
    LinkType,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, ...).
    NotTcp,
    /// A fragment of an IP datagram; we do not reassemble IP.
    Fragment,
    /// Headers that do not parse (cut too short or corrupt).
    Malformed,
}

/// BSD loopback address families (the 4-byte header of NULL and LOOP):
/// AF_INET is 2 everywhere, AF_INET6 is 24, 28 or 30 depending on the BSD.
const AF_INET: u32 = 2;
const AF_INET6: [u32; 3] = [24, 28, 30];

/// Finds the TCP segment in a frame of the given link type.
///
/// `orig_len` is the frame's length on the wire, used to tell a frame cut
/// by the snap length (whose missing tail is reported in
/// [`TcpSegment::missing`]) from a complete one.
pub fn tcp_segment(link: LinkType, frame: &[u8], orig_len: u32) -> Result<TcpSegment<'_>, Skip> {
    let sliced = match link {
        LinkType::ETHERNET => LaxSlicedPacket::from_ethernet(frame).map_err(|_| Skip::Malformed)?,
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => from_ip(frame)?,
        LinkType::NULL | LinkType::LOOP => {
            let (family, rest) = frame.split_at_checked(4).ok_or(Skip::Malformed)?;
            let family: [u8; 4] = family.try_into().map_err(|_| Skip::Malformed)?;
            // NULL stores the family in the capturing host's byte order and
            // LOOP in network order; the value is small, so whichever order
            // gives a small number is the right one.
            let (le, be) = (u32::from_le_bytes(family), u32::from_be_bytes(family));
            let family = le.min(be);
            if family != AF_INET && !AF_INET6.contains(&family) {
                return Err(Skip::NotIp);
            }
            from_ip(rest)?
        }
        // Linux cooked v1: 16-byte header, protocol (an EtherType) last.
        LinkType::LINUX_SLL => {
            let proto = frame.get(14..16).ok_or(Skip::Malformed)?;
            let rest = frame.get(16..).ok_or(Skip::Malformed)?;
            from_ether_type(u16::from_be_bytes([proto[0], proto[1]]), rest)?
        }
        // Linux cooked v2: 20-byte header, protocol first.
        LinkType::LINUX_SLL2 => {
            let proto = frame.get(0..2).ok_or(Skip::Malformed)?;
            let rest = frame.get(20..).ok_or(Skip::Malformed)?;
            from_ether_type(u16::from_be_bytes([proto[0], proto[1]]), rest)?
        }
        _ => return Err(Skip::LinkType),
    };
    segment(&sliced, frame.len() < orig_len as usize)
}

fn from_ip(data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    match data.first().map(|b| b >> 4) {
        Some(4) | Some(6) => LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed),
        _ => Err(Skip::NotIp),
    }
}

fn from_ether_type(ether_type: u16, data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    let ether_type = EtherType(ether_type);
    if ether_type != EtherType::IPV4 && ether_type != EtherType::IPV6 {
        return Err(Skip::NotIp);
    }
    Ok(LaxSlicedPacket::from_ether_type(ether_type, data))
}

/// Extracts the TCP segment from a sliced packet.
fn segment<'a>(p: &LaxSlicedPacket<'a>, snapped: bool) -> Result<TcpSegment<'a>, Skip> {
    let Some(net) = &p.net else {
        return Err(if p.stop_err.is_some() { Skip::Malformed } else { Skip::NotIp });
    };
    let (src_ip, dst_ip, ip_payload, claimed_end): (IpAddr, IpAddr, &LaxIpPayloadSlice<'a>, usize) =
        match net {
            LaxNetSlice::Ipv4(ip) => {
                let h = ip.header();
                let end = h.slice().as_ptr() as usize + h.total_len() as usize;
                (h.source_addr().into(), h.destination_addr().into(), ip.payload(), end)
            }
            LaxNetSlice::Ipv6(ip) => {
                let h = ip.header();
                let end = h.slice().as_ptr() as usize + 40 + h.payload_length() as usize;
                (h.source_addr().into(), h.destination_addr().into(), ip.payload(), end)
            }
            LaxNetSlice::Arp(_) => return Err(Skip::NotIp),
        };
    if ip_payload.fragmented {
        return Err(Skip::Fragment);
    }
    if ip_payload.ip_number != ip_number::TCP {
        return Err(Skip::NotTcp);
    }
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        return Err(Skip::Malformed);
    };
    let payload = tcp.payload();
    // Only a frame shorter than on the wire can be missing payload; in a
    // complete frame a larger IP length is a lie (or TSO), not a loss.
    let missing = if snapped && ip_payload.incomplete {
        let payload_end = payload.as_ptr() as usize + payload.len();
        claimed_end.saturating_sub(payload_end).min(u32::MAX as usize) as u32
    } else {
        0
    };
    Ok(TcpSegment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.ack().then(|| tcp.acknowledgment_number()),
        syn: tcp.syn(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 1000, 65535)
            .ack(77)
            .psh();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn raw_ipv4_segment() {
        let frame = ipv4_tcp(b"hello");
        let s = tcp_segment(LinkType::RAW, &frame, frame.len() as u32).unwrap();
        assert_eq!(s.src, "10.0.0.1:1234".parse().unwrap());
        assert_eq!(s.dst, "10.0.0.2:80".parse().unwrap());
        assert_eq!((s.seq, s.ack, s.payload, s.missing), (1000, Some(77), &b"hello"[..], 0));
        assert!(!s.syn && !s.fin && !s.rst);
    }

    #[test]
    fn snapped_frame_reports_missing_payload() {
        let frame = ipv4_tcp(&[7; 100]);
        let cut = &frame[..frame.len() - 30];
        let s = tcp_segment(LinkType::IPV4, cut, frame.len() as u32).unwrap();
        assert_eq!((s.payload.len(), s.missing), (70, 30));
    }

    #[test]
    fn null_family_in_either_byte_order() {
        let ip = ipv4_tcp(b"x");
        for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            let frame = [&family[..], &ip].concat();
            let s = tcp_segment(LinkType::NULL, &frame, frame.len() as u32).unwrap();
            assert_eq!(s.payload, b"x");
        }
        let frame = [&7u32.to_le_bytes()[..], &ip].concat();
        assert_eq!(tcp_segment(LinkType::LOOP, &frame, 0).err(), Some(Skip::NotIp));
    }

    #[test]
    fn non_tcp_and_garbage_are_classified() {
        let b = PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).udp(53, 53);
        let mut udp = Vec::new();
        b.write(&mut udp, b"q").unwrap();
        assert_eq!(tcp_segment(LinkType::RAW, &udp, 0).err(), Some(Skip::NotTcp));
        assert_eq!(tcp_segment(LinkType::RAW, &[0x45, 0], 2).err(), Some(Skip::Malformed));
        assert_eq!(tcp_segment(LinkType::RAW, &[0x12, 0], 2).err(), Some(Skip::NotIp));
        assert_eq!(tcp_segment(LinkType(147), &udp, 0).err(), Some(Skip::LinkType));
        assert_eq!(tcp_segment(LinkType::LINUX_SLL2, &[0; 5], 5).err(), Some(Skip::Malformed));
    }
}
