//! Writing chunks as synthetic TCP in pcapng.
