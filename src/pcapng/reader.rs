//! Reading pcap and pcapng files (plain, zstd or gzip).
