// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * unixsnoop: copy what threads send on AF_UNIX sockets into a ring buffer.
 *
 * At sys_enter of write, writev, sendto, sendmsg and sendmmsg the fd is
 * resolved to its socket; calls on anything but a Unix socket whose path (or
 * its peer's) matches the filter return at once, so unrelated syscalls pay
 * one map-free fd walk. Matching calls stash their arguments, keyed by thread
 * id, and sys_exit copies exactly the bytes the kernel reports as sent, in
 * records of at most CHUNK_MAX bytes, each tagged with its offset in the
 * socket's send stream so that user space sees every loss as a gap.
 *
 * The fentry/fexit and kprobe/kretprobe backends hook the Unix send
 * functions instead (unix_stream_sendmsg, and unix_dgram_sendmsg, which
 * unix_seqpacket_sendmsg calls): the entry stashes where the msghdr's
 * iterator points, the exit copies as many bytes as the function returns.
 * User space loads only the programs of the backend it picked (autoload);
 * the close tracepoint serves every backend.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "unixsnoop.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Copy steps per call: CHUNK_MAX-sized copies plus one per iovec/message. */
#define MAX_STEPS 256

/* Filters, set by user space before load. */
const volatile __u32 self_pid = 0;	/* the recorder: never captured */
const volatile bool match_any = false;
const volatile __u32 n_patterns = 0;
const volatile struct pattern patterns[MAX_PATTERNS] = {};
const volatile __u32 n_pids = 0;
const volatile __u32 pids[MAX_PIDS] = {};
const volatile __u32 n_comms = 0;
const volatile char comms[MAX_COMMS][COMM_LEN] = {};

/* A matching call between sys_enter and sys_exit. */
struct pending {
	struct event_hdr hdr;
	__u64 buf;		/* buffer, iovec array, msghdr or mmsghdr array */
	__u64 cnt;		/* iovec or message count */
	__u64 skip;		/* bytes of the first iovec already consumed */
};

/* Where the copy loop is within the call's user memory. */
struct cursor {
	__u64 msgs;		/* next mmsghdr */
	__u64 msgs_left;
	__u64 iov;		/* next iovec */
	__u64 iov_left;
	__u64 base;		/* next byte of the current segment */
	__u64 seg_left;
	__u64 msg_left;		/* bytes of the current message still to copy */
	__u64 off;		/* stream offset of the next byte */
	__u64 skip;		/* to skip at the start of the next iovec */
	__u64 iov_kernel;	/* the iovec array is in kernel memory */
};

struct record {
	struct event_hdr hdr;
	__u8 data[CHUNK_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);	/* resized by user space */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pending);
} calls SEC(".maps");

/* Bytes sent so far per sending sock, for stream offsets. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pending);
} pending_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct record);
} record_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cursor);
} cursor_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Syscall tracepoint records: every argument in an 8-byte slot. */
struct sys_enter_args {
	__u64 common;
	__s64 id;
	__u64 args[6];
};

struct sys_exit_args {
	__u64 common;
	__s64 id;
	__s64 ret;
};

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += n;
}

static __always_inline bool pid_allowed(__u32 pid)
{
	if (!n_pids)
		return true;
	for (__u32 i = 0; i < MAX_PIDS; i++) {
		if (i >= n_pids)
			break;
		if (pids[i] == pid)
			return true;
	}
	return false;
}

static __always_inline bool comm_allowed(const char *comm)
{
	if (!n_comms)
		return true;
	for (__u32 i = 0; i < MAX_COMMS; i++) {
		bool same = true;

		if (i >= n_comms)
			break;
		for (__u32 j = 0; j < COMM_LEN; j++) {
			if (comm[j] != comms[i][j]) {
				same = false;
				break;
			}
			if (!comm[j])
				break;
		}
		if (same)
			return true;
	}
	return false;
}

/* fd of the current task → its AF_UNIX sock (and file), or NULL. */
static __always_inline struct sock *unix_sock_of_fd(__u64 fd,
						    struct file **filep)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;
	struct socket *sock;
	struct sock *sk;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
		return NULL;
	*filep = file;
	return sk;
}

static __always_inline __u64 sock_ino(struct sock *sk)
{
	struct socket_alloc *sa = (void *)BPF_CORE_READ(sk, sk_socket);

	if (!sa)
		return 0;
	return BPF_CORE_READ(sa, vfs_inode.i_ino);
}

/* Everything about the sending socket that goes into each record. */
static __always_inline void fill_meta(struct event_hdr *h, struct sock *sk,
				      __u64 pid_tgid)
{
	struct unix_sock *us = (void *)sk;
	struct sock *peer = BPF_CORE_READ(us, peer);
	struct unix_address *addr = BPF_CORE_READ(us, addr);
	struct socket *so = BPF_CORE_READ(sk, sk_socket);
	__u64 len = 0;

	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->sock = (__u64)sk;
	h->peer_sock = (__u64)peer;
	h->sock_ino = sock_ino(sk);
	h->peer_ino = peer ? sock_ino(peer) : 0;
	h->peer_pid = BPF_CORE_READ(sk, sk_peer_pid, numbers[0].nr);
	h->sock_type = BPF_CORE_READ(so, type);
	h->flags = 0;
	h->path_len = 0;
	bpf_get_current_comm(h->comm, sizeof(h->comm));

	if (addr) {
		h->flags |= F_SENDER_BOUND;
	} else if (peer) {
		/* A connected client has no address: name it by the peer's. */
		addr = BPF_CORE_READ((struct unix_sock *)peer, addr);
		if (addr)
			h->flags |= F_PEER_BOUND;
	}
	if (!addr)
		return;
	len = BPF_CORE_READ(addr, len);
	if (len <= 2)
		return;
	len -= 2;		/* sun_family */
	if (len > PATH_LEN)
		len = PATH_LEN;
	bpf_probe_read_kernel(h->path, sizeof(h->path), &addr->name[0].sun_path);
	/* Filesystem names are stored with their NUL. */
	if (h->path[0] && len > 0 && len <= PATH_LEN && !h->path[(len - 1) & 127])
		len--;
	h->path_len = len;
}

static __always_inline bool path_matches(const struct event_hdr *h)
{
	if (match_any)
		return true;
	for (__u32 i = 0; i < MAX_PATTERNS; i++) {
		__u32 len;
		bool same = true;

		if (i >= n_patterns)
			break;
		len = patterns[i].len;
		if (len > h->path_len || (patterns[i].exact && len != h->path_len))
			continue;
		for (__u32 j = 0; j < PATH_LEN; j++) {
			if (j >= len)
				break;
			if (h->path[j] != patterns[i].prefix[j]) {
				same = false;
				break;
			}
		}
		if (same)
			return true;
	}
	return false;
}

/* References to an open file: fds (dup, fork) and calls in flight. */
static __always_inline long file_refs(struct file *file)
{
	struct file___old *old = (void *)file;

	if (bpf_core_field_exists(file->f_ref))
		return BPF_CORE_READ(file, f_ref.refcnt.counter) + 1;
	return BPF_CORE_READ(old, f_count.counter);
}

/* The pid and comm filters, and never the recorder itself. */
static __always_inline bool task_allowed(__u64 pid_tgid)
{
	/* Our own output may go to a Unix socket (journald, a pipe to
	 * Wireshark over ssh): capturing it would feed back. */
	if ((pid_tgid >> 32) == self_pid || !pid_allowed(pid_tgid >> 32))
		return false;
	if (n_comms) {
		char comm[COMM_LEN] = {};

		bpf_get_current_comm(comm, sizeof(comm));
		if (!comm_allowed(comm))
			return false;
	}
	return true;
}

/* Fill the per-CPU pending scratch for `sk` if its path matches. */
static __always_inline struct pending *match_sk(struct sock *sk, __u64 pid_tgid)
{
	struct pending *p;
	__u32 zero = 0;

	p = bpf_map_lookup_elem(&pending_scratch, &zero);
	if (!p)
		return NULL;
	fill_meta(&p->hdr, sk, pid_tgid);
	if (!path_matches(&p->hdr))
		return NULL;
	p->skip = 0;
	return p;
}

/*
 * Resolve and filter; on a match, fill the per-CPU pending scratch and,
 * when asked, tell whether this fd holds the file's last reference.
 */
static __always_inline struct pending *match_fd(__u64 fd, bool *last)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct file *file = NULL;
	struct sock *sk;

	if (!task_allowed(pid_tgid))
		return NULL;
	sk = unix_sock_of_fd(fd, &file);
	if (!sk)
		return NULL;
	if (last && file_refs(file) > 1)
		return NULL;
	return match_sk(sk, pid_tgid);
}

static __always_inline int on_enter(struct sys_enter_args *ctx, __u8 sys)
{
	struct pending *p = match_fd(ctx->args[0], NULL);
	__u32 tid;

	if (!p)
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	p->hdr.kind = EV_DATA;
	p->hdr.syscall = sys;
	p->buf = ctx->args[1];
	p->cnt = ctx->args[2];
	bpf_map_update_elem(&calls, &tid, p, BPF_ANY);
	return 0;
}

/* Point the cursor at the bytes the call sent. */
static __always_inline void cursor_init(struct cursor *c, struct pending *p,
					__u64 ret)
{
	struct user_msghdr m = {};

	__builtin_memset(c, 0, sizeof(*c));
	switch (p->hdr.syscall) {
	case SYS_WRITE:
	case SYS_SENDTO:
		c->base = p->buf;
		c->seg_left = ret;
		c->msg_left = ret;
		break;
	case SYS_WRITEV:
		c->iov = p->buf;
		c->iov_left = p->cnt;
		c->msg_left = ret;
		break;
	case SYS_SENDMSG:
		if (bpf_probe_read_user(&m, sizeof(m), (void *)p->buf))
			break;
		c->iov = (__u64)m.msg_iov;
		c->iov_left = m.msg_iovlen;
		c->msg_left = ret;
		break;
	case SYS_SENDMMSG:
		/* ret counts messages; each one's msg_len was written back. */
		c->msgs = p->buf;
		c->msgs_left = ret;
		break;
	case SYS_UNIX_UBUF:
		c->base = p->buf;
		c->seg_left = ret;
		c->msg_left = ret;
		break;
	case SYS_UNIX_IOVEC:
		c->iov = p->buf;
		c->iov_left = p->cnt;
		c->iov_kernel = 1;
		c->skip = p->skip;
		c->msg_left = ret;
		break;
	}
}

/*
 * One step of the copy: move to the next message or iovec, or copy and emit
 * up to CHUNK_MAX bytes. Returns false when the call is used up.
 */
static __always_inline bool copy_step(struct cursor *c, struct record *r)
{
	__u64 n;

	if (!c->msg_left) {
		struct user_mmsghdr mm = {};

		if (!c->msgs_left)
			return false;
		if (bpf_probe_read_user(&mm, sizeof(mm), (void *)c->msgs))
			return false;
		c->msgs += sizeof(mm);
		c->msgs_left--;
		c->iov = (__u64)mm.msg_hdr.msg_iov;
		c->iov_left = mm.msg_hdr.msg_iovlen;
		c->msg_left = mm.msg_len;
		c->seg_left = 0;
		return true;
	}
	if (!c->seg_left) {
		struct user_iovec v = {};

		if (!c->iov_left)
			return false;
		if (c->iov_kernel) {
			if (bpf_probe_read_kernel(&v, sizeof(v), (void *)c->iov))
				return false;
		} else if (bpf_probe_read_user(&v, sizeof(v), (void *)c->iov)) {
			return false;
		}
		c->iov += sizeof(v);
		c->iov_left--;
		c->base = (__u64)v.iov_base;
		c->seg_left = v.iov_len;
		if (c->skip) {
			__u64 k = c->skip < c->seg_left ? c->skip : c->seg_left;

			c->base += k;
			c->seg_left -= k;
			c->skip = 0;
		}
		return true;
	}

	n = c->seg_left < c->msg_left ? c->seg_left : c->msg_left;
	if (n > CHUNK_MAX)
		n = CHUNK_MAX;
	asm volatile("" : "+r"(n));
	if (n > CHUNK_MAX)
		return false;
	if (bpf_probe_read_user(r->data, n, (void *)c->base))
		return false;
	r->hdr.data_len = n;
	r->hdr.stream_off = c->off;
	if (bpf_ringbuf_output(&events, r, sizeof(r->hdr) + n, 0)) {
		stat_add(STAT_LOST_RECORDS, 1);
		stat_add(STAT_LOST_BYTES, n);
	}
	r->hdr.flags &= ~F_CALL_START;
	c->off += n;
	c->base += n;
	c->seg_left -= n;
	c->msg_left -= n;
	return true;
}

/* The call stashed for this thread returned `sret`: copy what it sent. */
static __always_inline int finish_call(__s64 sret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&calls, &tid);
	__u64 ret = sret, start, zero64 = 0, *sentp;
	struct record *r;
	struct cursor *c;
	__u32 zero = 0;

	if (!p)
		return 0;
	if (sret <= 0)
		goto out;
	r = bpf_map_lookup_elem(&record_scratch, &zero);
	c = bpf_map_lookup_elem(&cursor_scratch, &zero);
	if (!r || !c)
		goto out;
	sentp = bpf_map_lookup_elem(&sent, &p->hdr.sock);
	if (!sentp) {
		bpf_map_update_elem(&sent, &p->hdr.sock, &zero64, BPF_NOEXIST);
		sentp = bpf_map_lookup_elem(&sent, &p->hdr.sock);
		if (!sentp)
			goto out;
	}

	__builtin_memcpy(&r->hdr, &p->hdr, sizeof(r->hdr));
	r->hdr.ts_ns = bpf_ktime_get_ns();
	r->hdr.call_len = p->hdr.syscall == SYS_SENDMMSG ? 0 : ret;
	r->hdr.flags |= F_CALL_START;
	cursor_init(c, p, ret);
	/*
	 * Not atomic: two threads sending on one socket at once can get
	 * overlapping offsets. Their bytes interleave in the kernel in an order
	 * no syscall hook can see anyway; an atomic fetch-add needs 5.12.
	 */
	start = *sentp;
	c->off = start;

	for (__u32 i = 0; i < MAX_STEPS; i++) {
		if (!copy_step(c, r))
			break;
	}

	/* Bytes left past the step limit still advance the stream. */
	if (c->msg_left) {
		stat_add(STAT_CUT_BYTES, c->msg_left);
		c->off += c->msg_left;
	}
	*sentp = c->off;
out:
	bpf_map_delete_elem(&calls, &tid);
	return 0;
}

static __always_inline int on_exit(struct sys_exit_args *ctx)
{
	return finish_call(ctx->ret);
}

/* The iterator's type, as a value of the running kernel's enum iter_type. */
static __always_inline __u32 iter_type_of(struct iov_iter *it)
{
	struct iov_iter___old *old = (void *)it;

	if (bpf_core_field_exists(it->iter_type))
		return BPF_CORE_READ(it, iter_type);
	/* Before 5.14: the type bits with READ/WRITE in bit 0. */
	return BPF_CORE_READ(old, type) & ~1u;
}

/*
 * Entry of unix_{stream,dgram}_sendmsg: filter on the socket, then stash
 * where the bytes are. Only iterators over user memory are followed (not
 * the kernel pages of splice or sendfile).
 */
static __always_inline int on_send_enter(struct socket *sock, struct msghdr *msg)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct iov_iter *it = __builtin_preserve_access_index(&msg->msg_iter);
	struct iov_iter___old *old = (void *)it;
	struct pending *p;
	struct sock *sk;
	__u32 tid = (__u32)pid_tgid, type;

	if (!task_allowed(pid_tgid))
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
		return 0;
	p = match_sk(sk, pid_tgid);
	if (!p)
		return 0;
	type = iter_type_of(it);
	if (bpf_core_enum_value_exists(enum iter_type, ITER_UBUF) &&
	    type == bpf_core_enum_value(enum iter_type, ITER_UBUF)) {
		p->hdr.syscall = SYS_UNIX_UBUF;
		p->buf = (__u64)BPF_CORE_READ(it, ubuf) + BPF_CORE_READ(it, iov_offset);
		p->cnt = 1;
	} else if (type == bpf_core_enum_value(enum iter_type, ITER_IOVEC)) {
		p->hdr.syscall = SYS_UNIX_IOVEC;
		if (bpf_core_field_exists(it->__iov))
			p->buf = (__u64)BPF_CORE_READ(it, __iov);
		else
			p->buf = (__u64)BPF_CORE_READ(old, iov);
		p->cnt = BPF_CORE_READ(it, nr_segs);
		p->skip = BPF_CORE_READ(it, iov_offset);
	} else {
		return 0;
	}
	p->hdr.kind = EV_DATA;
	bpf_map_update_elem(&calls, &tid, p, BPF_ANY);
	return 0;
}

SEC("fentry/unix_stream_sendmsg")
int BPF_PROG(fentry_stream, struct socket *sock, struct msghdr *msg)
{
	return on_send_enter(sock, msg);
}

SEC("fexit/unix_stream_sendmsg")
int BPF_PROG(fexit_stream, struct socket *sock, struct msghdr *msg, __u64 len, int ret)
{
	return finish_call(ret);
}

SEC("fentry/unix_dgram_sendmsg")
int BPF_PROG(fentry_dgram, struct socket *sock, struct msghdr *msg)
{
	return on_send_enter(sock, msg);
}

SEC("fexit/unix_dgram_sendmsg")
int BPF_PROG(fexit_dgram, struct socket *sock, struct msghdr *msg, __u64 len, int ret)
{
	return finish_call(ret);
}

SEC("kprobe/unix_stream_sendmsg")
int BPF_KPROBE(kprobe_stream, struct socket *sock, struct msghdr *msg)
{
	return on_send_enter(sock, msg);
}

SEC("kretprobe/unix_stream_sendmsg")
int BPF_KRETPROBE(kretprobe_stream, int ret)
{
	return finish_call(ret);
}

SEC("kprobe/unix_dgram_sendmsg")
int BPF_KPROBE(kprobe_dgram, struct socket *sock, struct msghdr *msg)
{
	return on_send_enter(sock, msg);
}

SEC("kretprobe/unix_dgram_sendmsg")
int BPF_KRETPROBE(kretprobe_dgram, int ret)
{
	return finish_call(ret);
}

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct sys_enter_args *ctx)
{
	return on_enter(ctx, SYS_WRITE);
}

SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct sys_exit_args *ctx)
{
	return on_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct sys_enter_args *ctx)
{
	return on_enter(ctx, SYS_WRITEV);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct sys_exit_args *ctx)
{
	return on_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct sys_enter_args *ctx)
{
	return on_enter(ctx, SYS_SENDTO);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct sys_exit_args *ctx)
{
	return on_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct sys_enter_args *ctx)
{
	return on_enter(ctx, SYS_SENDMSG);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct sys_exit_args *ctx)
{
	return on_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enter_sendmmsg(struct sys_enter_args *ctx)
{
	return on_enter(ctx, SYS_SENDMMSG);
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int exit_sendmmsg(struct sys_exit_args *ctx)
{
	return on_exit(ctx);
}

/*
 * The last fd of a socket is being closed: user space sends FIN. Closing one
 * of several fds (dup, fork, a call in flight on another thread) is not an
 * end, so it is not reported.
 */
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct sys_enter_args *ctx)
{
	bool last = true;
	struct pending *p = match_fd(ctx->args[0], &last);

	if (!p)
		return 0;
	p->hdr.kind = EV_CLOSE;
	p->hdr.syscall = SYS_CLOSE;
	p->hdr.ts_ns = bpf_ktime_get_ns();
	p->hdr.data_len = 0;
	p->hdr.call_len = 0;
	p->hdr.stream_off = 0;
	if (bpf_ringbuf_output(&events, &p->hdr, sizeof(p->hdr), 0))
		stat_add(STAT_LOST_RECORDS, 1);
	return 0;
}
