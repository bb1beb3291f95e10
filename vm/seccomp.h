/*
 * Per-thread seccomp filters (libseccomp). Each kind of thread allows only
 * the system calls it makes, with argument checks on ioctl (only the KVM,
 * TUN and TTY requests Ember issues), mmap/mprotect (never PROT_EXEC) and
 * the like. Every thread is filtered before the guest runs its first
 * instruction. A violation logs the system call and ends ember (status 148,
 * Firecracker's code for a bad syscall).
 */
#ifndef EMBER_SECCOMP_H
#define EMBER_SECCOMP_H

#include <stdio.h>

#include "core/errmsg.h"

enum thread_kind { THREAD_VMM, THREAD_API, THREAD_VCPU, THREAD_KINDS };

#define EXIT_BAD_SYSCALL 148

/* Process-wide switch (--no-seccomp); set once before any thread starts. */
void seccomp_set_enabled(int on);
int seccomp_enabled(void);
/*
 * Compiles a thread kind's filter ahead of its install (call before the
 * threads exist; no-op when disabled or already done). Optional: without it
 * seccomp_install compiles the policy itself.
 */
int seccomp_precompile(enum thread_kind kind, struct errmsg *err);
/* Installs the calling thread's filter (no-op when disabled). */
int seccomp_install(enum thread_kind kind, struct errmsg *err);
/* The API thread's init hook (api_server_start's thread_init). */
int seccomp_install_api(void);
/* Prints each thread's policy: one line per rule. */
void seccomp_print(FILE *out);
/* Number of rules in a thread kind's policy. */
unsigned seccomp_rule_count(enum thread_kind kind);
const char *thread_kind_name(enum thread_kind kind);

#endif
