//! The reader on third-party captures (../shared/testdata/captures): every
//! file reads to a clean end, with the packet counts, link types and
//! timestamps that capinfos and tshark 4.0 report for it.

mod reassembly_support;

use dockersnoop::pcapng::reader::{CaptureReader, Format};
use dockersnoop::pcapng::LinkType;
use reassembly_support::{run_file, testdata};

/// (file, packets, link type) as capinfos reports them.
const CAPTURES: &[(&str, usize, LinkType)] = &[
    ("packt-grpc-go/Bidi_Streaming.pcapng", 56, LinkType::NULL),
    ("packt-grpc-go/Client_Streaming.pcapng", 52, LinkType::NULL),
    ("packt-grpc-go/Server_Streaming.pcapng", 31, LinkType::NULL),
    ("packt-grpc-go/Unary.pcapng", 4318, LinkType::NULL),
    ("ptcpdump/tcp.pcapng", 24, LinkType::ETHERNET),
    ("suricata-verify/bug-5929-02__http2_multiple_headers.pcap", 12, LinkType::ETHERNET),
    ("suricata-verify/dns-over-http2__dns_over_https.pcap", 25, LinkType::ETHERNET),
    ("suricata-verify/http2-authority-mismatch__authority_and_host_2.pcap", 10, LinkType::ETHERNET),
    ("suricata-verify/http2-bugfixes__input.pcap", 29, LinkType::ETHERNET),
    ("suricata-verify/http2-continuation__input.pcap", 30, LinkType::NULL),
    ("suricata-verify/http2-deflate-case__input.pcap", 28, LinkType::NULL),
    ("suricata-verify/http2-deflate__http2_deflate.pcap", 30, LinkType::NULL),
    ("suricata-verify/http2-keywords2__input.pcap", 10, LinkType::ETHERNET),
    ("suricata-verify/http2-keywords__input.pcap", 56, LinkType::ETHERNET),
    ("suricata-verify/http2-long-frame__input.pcap", 60, LinkType::ETHERNET),
    (
        "suricata-verify/http2-userinfo-authority__http2_userinfo_in_authority_1.pcap",
        9,
        LinkType::ETHERNET,
    ),
];

#[test]
fn every_capture_reads_to_a_clean_end() {
    for &(file, count, link) in CAPTURES {
        let run = run_file(&testdata(&format!("captures/{file}")));
        assert!(run.error.is_none(), "{file}: {}", run.error.unwrap());
        assert_eq!(run.packets.len(), count, "{file}: packet count");
        assert_eq!(run.read.packets, count as u64, "{file}: stats");
        assert!(run.packets.iter().all(|p| p.link == link), "{file}: link type");
        assert!(run.packets.iter().all(|p| p.orig_len as usize >= p.data.len()), "{file}");
        // Offsets are increasing and each points at a record or block.
        assert!(run.packets.windows(2).all(|w| w[0].offset < w[1].offset), "{file}: offsets");
    }
}

#[test]
fn timestamps_match_tshark() {
    // frame.time_epoch of the first two packets, from tshark 4.0.
    let cases: &[(&str, [u64; 2])] = &[
        ("packt-grpc-go/Unary.pcapng", [1_672_043_390_251_748_000, 1_672_043_390_252_043_000]),
        (
            "suricata-verify/http2-keywords__input.pcap",
            [1_406_976_625_815_505_000, 1_406_976_625_815_525_000],
        ),
        ("ptcpdump/tcp.pcapng", [1_730_555_435_524_360_149, 1_730_555_435_524_995_449]),
    ];
    for (file, ts) in cases {
        let mut r = CaptureReader::open(&testdata(&format!("captures/{file}"))).unwrap();
        let got =
            [r.next_packet().unwrap().unwrap().ts_ns, r.next_packet().unwrap().unwrap().ts_ns];
        assert_eq!(&got, ts, "{file}");
    }
}

#[test]
fn pcap_offsets_count_records() {
    let path = testdata("captures/suricata-verify/http2-keywords2__input.pcap");
    let mut r = CaptureReader::open(&path).unwrap();
    assert_eq!(r.format(), Format::Pcap);
    let mut expected = 24;
    while let Some(p) = r.next_packet().unwrap() {
        assert_eq!(p.offset, expected);
        expected += 16 + p.data.len() as u64;
    }
    assert_eq!(expected, std::fs::metadata(&path).unwrap().len());
}

#[test]
fn ptcpdump_has_two_interfaces_and_no_metadata_of_ours() {
    let run = run_file(&testdata("captures/ptcpdump/tcp.pcapng"));
    assert_eq!(run.read.sections, 1);
    assert_eq!(run.read.interfaces, 2);
    // Its packet blocks carry comments and flags, not our custom option.
    assert_eq!(run.read.with_meta, 0);
    assert_eq!(run.read.bad_meta, 0);
    assert_eq!(run.read.repaired_packets, 0);
    assert!(run.packets.iter().all(|p| p.meta.is_none()));
}
