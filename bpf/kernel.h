/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel types unixsnoop.bpf.c reads, declared by hand instead of a
 * whole vmlinux.h. Every struct is marked preserve_access_index, so libbpf
 * relocates each field access against the running kernel's BTF (CO-RE): only
 * the field names and rough types must match, not the layout.
 */
#ifndef __DOCKERSNOOP_KERNEL_H
#define __DOCKERSNOOP_KERNEL_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

#define AF_UNIX 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct upid {
	int nr;
} __attribute__((preserve_access_index));

struct pid {
	struct upid numbers[1];
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
} __attribute__((preserve_access_index));

typedef struct {
	long counter;
} atomic_long_t;

/* From 6.13: one reference is stored as 0. */
typedef struct {
	atomic_long_t refcnt;
} file_ref_t;

struct file {
	struct inode *f_inode;
	void *private_data;
	file_ref_t f_ref;
} __attribute__((preserve_access_index));

/* Before 6.13 (libbpf ignores the ___old suffix when relocating). */
struct file___old {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct files_struct *files;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	struct pid *sk_peer_pid;
	struct socket *sk_socket;
} __attribute__((preserve_access_index));

struct socket {
	short type;
	struct file *file;
	struct sock *sk;
} __attribute__((preserve_access_index));

/* The socket and its inode are allocated together; SOCK_INODE() in C. */
struct socket_alloc {
	struct socket socket;
	struct inode vfs_inode;
} __attribute__((preserve_access_index));

struct sockaddr_un {
	unsigned short sun_family;
	char sun_path[108];
} __attribute__((preserve_access_index));

struct unix_address {
	int len;
	struct sockaddr_un name[1];
} __attribute__((preserve_access_index));

struct unix_sock {
	struct sock sk;
	struct unix_address *addr;
	struct sock *peer;
} __attribute__((preserve_access_index));

/*
 * The iterator over the bytes a sendmsg carries. Its layout changed often:
 * `iter_type` (an enum whose values changed too: read them with
 * bpf_core_enum_value) from 5.14, `unsigned int type` with direction bits
 * before; ITER_UBUF (one user buffer, what write(2) makes) from 6.0; the
 * iovec pointer `iov` renamed `__iov` in 6.4. The locals below name fields
 * only; libbpf finds them inside the kernel's anonymous unions.
 */
enum iter_type {
	ITER_IOVEC = 0,
	ITER_UBUF = 1,
};

struct iov_iter {
	__u8 iter_type;
	__u64 iov_offset;
	void *__iov;
	void *ubuf;
	__u64 count;
	unsigned long nr_segs;
} __attribute__((preserve_access_index));

/* Before 6.4 (iov) and before 5.14 (type). */
struct iov_iter___old {
	unsigned int type;
	void *iov;
} __attribute__((preserve_access_index));

struct msghdr {
	struct iov_iter msg_iter;
} __attribute__((preserve_access_index));

/*
 * Registers at a kprobe (fixed by the architecture's ABI; bpf_tracing.h
 * reads the arguments and the return value out of them).
 */
#if defined(__TARGET_ARCH_x86)
/* The user-space spelling of the names, which bpf_tracing.h expects here. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#endif

/* User-space layouts (UAPI, stable): no relocation wanted. */
struct user_iovec {
	void *iov_base;
	__u64 iov_len;
};

struct user_msghdr {
	void *msg_name;
	int msg_namelen;
	struct user_iovec *msg_iov;
	__u64 msg_iovlen;
	void *msg_control;
	__u64 msg_controllen;
	unsigned int msg_flags;
};

struct user_mmsghdr {
	struct user_msghdr msg_hdr;
	unsigned int msg_len;
};

#endif /* __DOCKERSNOOP_KERNEL_H */
