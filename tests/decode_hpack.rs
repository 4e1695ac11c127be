//! Every block of ../shared/testdata/hpack decoded through our HPACK decoder,
//! plus a no-panic run over random and mutated blocks.

mod rng;

use std::path::PathBuf;

use dockersnoop::decode::hpack::{Field, HeaderDecoder, DEFAULT_TABLE_SIZE};
use rng::Rng;
use serde_json::Value;

fn testdata(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/hpack").join(rel);
    assert!(p.exists(), "test data missing: {} (shared/ must sit beside the crate)", p.display());
    p
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn expected(headers: &Value) -> Vec<Field> {
    headers
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h.as_object().unwrap().iter())
        .map(|(k, v)| Field { name: k.clone(), value: v.as_str().unwrap().to_string() })
        .collect()
}

/// A decoder whose table starts at the size in force for the first block.
fn fresh(cases: &[Value]) -> HeaderDecoder {
    let size = cases.first().and_then(|c| c["header_table_size"].as_u64());
    HeaderDecoder::new(size.map_or(DEFAULT_TABLE_SIZE, |s| s as u32))
}

/// Decodes one story; returns the number of blocks, or the first failure.
fn run_story(cases: &[Value]) -> Result<usize, String> {
    let mut d = fresh(cases);
    for c in cases {
        let seq = &c["seqno"];
        if let Some(size) = c["header_table_size"].as_u64() {
            d.set_max_allowed(size as u32);
        }
        let mut got = Vec::new();
        d.decode(&hex(c["wire"].as_str().unwrap()), &mut got)
            .map_err(|e| format!("seqno {seq}: {e}"))?;
        let want = expected(&c["headers"]);
        if got != want {
            return Err(format!("seqno {seq}: got {got:?}, want {want:?}"));
        }
    }
    Ok(cases.len())
}

#[test]
fn hpack_test_case_stories() {
    let root = testdata("hpack-test-case");
    let mut blocks = 0;
    let mut failures = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
            let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            match run_story(v["cases"].as_array().unwrap()) {
                Ok(n) => blocks += n,
                Err(e) => failures.push(format!("{}: {e}", f.display())),
            }
        }
    }
    assert!(failures.is_empty(), "{} stories failed, first: {}", failures.len(), failures[0]);
    assert_eq!(blocks, 47_142, "block count of the corpus changed");
}

#[test]
fn rfc7541_appendix_c() {
    let v: Value = serde_json::from_slice(
        &std::fs::read(testdata("rfc7541/rfc7541_appendix_c.json")).unwrap(),
    )
    .unwrap();
    let stories = v["stories"].as_array().unwrap();
    for s in stories {
        let cases = s["cases"].as_array().unwrap();
        if let Err(e) = run_story(cases) {
            panic!("{}: {e}", s["description"]);
        }
        // The dynamic table after each block: every entry must be addressable
        // at its index (62 = newest) and the next index must be empty.
        let mut d = fresh(cases);
        for c in cases {
            if let Some(size) = c["header_table_size"].as_u64() {
                d.set_max_allowed(size as u32);
            }
            d.decode(&hex(c["wire"].as_str().unwrap()), &mut Vec::new()).unwrap();
            let table = expected(&c["dynamic_table_after"]);
            for (i, entry) in table.iter().enumerate() {
                let mut probe = Vec::new();
                let idx = 62 + i;
                let block: Vec<u8> =
                    if idx < 127 { vec![0x80 | idx as u8] } else { vec![0xff, (idx - 127) as u8] };
                d.decode(&block, &mut probe).unwrap();
                assert_eq!(&probe[0], entry, "{}: entry {idx}", s["description"]);
            }
            let idx = 62 + table.len();
            assert!(
                d.decode(&[0x80 | idx as u8], &mut Vec::new()).is_err(),
                "{}: index {idx} should be empty",
                s["description"]
            );
        }
    }
}

#[test]
fn negative_edge_cases() {
    let v: Value =
        serde_json::from_slice(&std::fs::read(testdata("negative/hpack_edge_cases.json")).unwrap())
            .unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let mut d = HeaderDecoder::new(c["header_table_size"].as_u64().unwrap_or(4096) as u32);
        let mut got = Vec::new();
        let res = d.decode(&hex(c["wire"].as_str().unwrap()), &mut got);
        match c["expect"].as_str().unwrap() {
            "ok" => {
                assert!(res.is_ok(), "{id}: {res:?}");
                if c["headers"].is_array() {
                    assert_eq!(got, expected(&c["headers"]), "{id}");
                }
            }
            "error" => assert!(res.is_err(), "{id}: accepted as {got:?}"),
            other => panic!("{id}: unknown expectation {other}"),
        }
        assert_eq!(d.caught_panics, 0, "{id}: the inner decoder panicked");
    }
}

#[test]
fn random_and_mutated_blocks_never_panic() {
    // Seeds: real blocks from one story of each encoder kind.
    let mut seeds = Vec::new();
    for enc in ["nghttp2", "go-hpack", "python-hpack", "haskell-http2-linear-huffman"] {
        let v: Value = serde_json::from_slice(
            &std::fs::read(testdata(&format!("hpack-test-case/{enc}/story_00.json"))).unwrap(),
        )
        .unwrap();
        seeds.extend(
            v["cases"].as_array().unwrap().iter().map(|c| hex(c["wire"].as_str().unwrap())),
        );
    }
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut d = HeaderDecoder::new(DEFAULT_TABLE_SIZE);
    let mut errors = 0;
    for i in 0..200_000 {
        let block: Vec<u8> = if i % 4 == 0 {
            (0..rng.below(40)).map(|_| rng.next() as u8).collect()
        } else {
            let mut b = seeds[rng.below(seeds.len())].clone();
            match rng.below(4) {
                0 => b.truncate(rng.below(b.len() + 1)),
                1 if !b.is_empty() => {
                    let at = rng.below(b.len());
                    b[at] ^= 1 << rng.below(8);
                }
                2 => b.insert(rng.below(b.len() + 1), rng.next() as u8),
                _ if !b.is_empty() => {
                    let at = rng.below(b.len());
                    b[at] = rng.next() as u8;
                }
                _ => {}
            }
            b
        };
        if d.decode(&block, &mut Vec::new()).is_err() {
            errors += 1;
            d.reset_unknown();
        }
        if i % 1000 == 0 {
            d = HeaderDecoder::new(DEFAULT_TABLE_SIZE);
        }
    }
    assert_eq!(d.caught_panics, 0, "the inner decoder panicked: the guard missed a case");
    assert!(errors > 10_000, "mutations should produce errors, got {errors}");
}
