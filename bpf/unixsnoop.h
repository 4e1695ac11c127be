/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the kernel side hands to user space through the ring buffer, and the
 * filter table user space fills in before loading. Shared by
 * unixsnoop.bpf.c and (through the generated skeleton types and
 * src/capture/bpf.rs) the recorder.
 */
#ifndef __DOCKERSNOOP_UNIXSNOOP_H
#define __DOCKERSNOOP_UNIXSNOOP_H

#define COMM_LEN 16
#define PATH_LEN 108		/* sizeof(sockaddr_un.sun_path) */
/* Payload bytes in one ring record: a per-CPU map value is at most 32 KiB. */
#define CHUNK_MAX (32 * 1024 - 256)
#define MAX_PATTERNS 16
#define MAX_PIDS 16
#define MAX_COMMS 8

/* event_hdr.kind */
#define EV_DATA 1		/* bytes sent: data_len bytes follow the header */
#define EV_CLOSE 2		/* the sender closed an fd of this socket */

/* event_hdr.flags */
#define F_SENDER_BOUND 1	/* the sending socket has the address */
#define F_PEER_BOUND 2		/* the peer socket has the address */
#define F_CALL_START 4		/* first record of a call */

/* event_hdr.syscall */
#define SYS_WRITE 1
#define SYS_WRITEV 2
#define SYS_SENDTO 3
#define SYS_SENDMSG 4
#define SYS_SENDMMSG 5
#define SYS_CLOSE 6
/* fentry/kprobe backends: unix_{stream,dgram}_sendmsg, whatever the syscall */
#define SYS_UNIX_UBUF 7		/* one user buffer (write, send, sendto) */
#define SYS_UNIX_IOVEC 8	/* an iovec array in kernel memory */

/* Counters in the per-CPU `stats` array. */
#define STAT_LOST_RECORDS 0	/* ring buffer full: records not written */
#define STAT_LOST_BYTES 1	/* payload bytes in those records */
#define STAT_CUT_BYTES 2	/* bytes past the per-call copy limit */
#define STAT_MAX 3

struct event_hdr {
	__u64 ts_ns;		/* CLOCK_MONOTONIC at syscall exit */
	__u64 sock;		/* kernel address of the sending sock */
	__u64 peer_sock;	/* and of its peer: both stable per connection */
	__u64 sock_ino;
	__u64 peer_ino;
	__u64 stream_off;	/* offset of the first byte in the socket's send stream */
	__u32 kind;
	__u32 pid;
	__u32 tid;
	__u32 peer_pid;		/* 0 when unknown */
	__u32 data_len;		/* payload bytes in this record */
	__u32 call_len;		/* bytes the whole call sent */
	__u16 sock_type;
	__u16 path_len;
	__u8 flags;
	__u8 syscall;
	__u8 pad[2];
	char comm[COMM_LEN];
	char path[PATH_LEN];	/* abstract names start with a NUL byte */
};

/*
 * A socket path pattern: a path matches when its first `len` bytes equal
 * `prefix`, and, when `exact` is set, it is exactly `len` bytes long. Globs
 * are sent as the prefix before their first wildcard; user space applies the
 * whole glob to what arrives.
 */
struct pattern {
	char prefix[PATH_LEN];
	__u32 len;
	__u32 exact;
};

#endif /* __DOCKERSNOOP_UNIXSNOOP_H */
