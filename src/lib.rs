//! dockersnoop: capture what processes say over Unix domain sockets and decode
//! it through HTTP/2, HPACK, gRPC and protobuf.
//!
//! The modules follow the data:
//! capture sources ([`capture`]) → chunks ([`chunk`]) → pcapng files
//! ([`pcapng`]) → stream reassembly ([`reassembly`]) → protocol decoders
//! ([`decode`]) → renderers ([`render`]).

pub mod capture;
pub mod chunk;
pub mod cli;
pub mod decode;
pub mod logger;
pub mod pcapng;
pub mod reassembly;
pub mod render;
pub mod schema;
pub mod watch;
