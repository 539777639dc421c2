/*
 * segv.c: SIGSEGV diagnostics for managed memory.
 *
 * An access to a space outside every map entry (or against an entry's
 * protection) is the application's bug, as it would be with mmap.  The
 * handler says where it happened, in terms of the runtime's map, then
 * hands the signal to whatever handler was there before (by default the
 * kernel's action: the process dies with a core dump).
 *
 * Async-signal safety: only write(2), no stdio, no allocation; the map is
 * consulted with a try-lock and not at all if it is busy.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "fault/trap.h"
#include "map.h"
#include "space.h"
#include "usrvm_internal.h"

static struct sigaction segv_prev;
static bool segv_installed;

struct segv_buf {
	char b[256];
	size_t n;
};

static void
segv_puts(struct segv_buf *sb, const char *s)
{
	while (*s != '\0' && sb->n < sizeof(sb->b) - 1)
		sb->b[sb->n++] = *s++;
}

static void
segv_putx(struct segv_buf *sb, uintptr_t v)
{
	char tmp[2 + 16];
	int i = sizeof(tmp);

	do {
		tmp[--i] = "0123456789abcdef"[v & 0xf];
		v >>= 4;
	} while (v != 0);
	tmp[--i] = 'x';
	tmp[--i] = '0';
	while (i < (int)sizeof(tmp) && sb->n < sizeof(sb->b) - 1)
		sb->b[sb->n++] = tmp[i++];
}

static void
segv_report(uintptr_t va)
{
	struct usrvm_space *vs = space_of(va);
	struct vm_map_entry *e;
	struct segv_buf sb = { .n = 0 };

	if (vs == NULL)
		return;
	segv_puts(&sb, "usrvm: SIGSEGV at ");
	segv_putx(&sb, va);
	segv_puts(&sb, " in space ");
	segv_putx(&sb, (uintptr_t)vs);
	segv_puts(&sb, " [");
	segv_putx(&sb, vs->vs_base);
	segv_puts(&sb, ", ");
	segv_putx(&sb, vs->vs_base + vs->vs_size);
	segv_puts(&sb, "): ");
	if (pthread_rwlock_tryrdlock(&vs->vs_map.m_lock) != 0) {
		segv_puts(&sb, "map busy, entry unknown");
	} else {
		e = map_tree_lookup(&vs->vs_map.m_tree, va);
		if (e == NULL) {
			segv_puts(&sb, "no map entry");
		} else {
			segv_puts(&sb, "protection: entry [");
			segv_putx(&sb, e->start);
			segv_puts(&sb, ", ");
			segv_putx(&sb, e->end);
			segv_puts(&sb, e->protection & USRVM_PROT_WRITE ?
			    ") read/write" : e->protection & USRVM_PROT_READ ?
			    ") read-only" : ") no access");
		}
		pthread_rwlock_unlock(&vs->vs_map.m_lock);
	}
	segv_puts(&sb, "\n");
	(void)!write(STDERR_FILENO, sb.b, sb.n);
}

static void
segv_handler(int sig, siginfo_t *si, void *uc)
{
	segv_report((uintptr_t)si->si_addr);

	/* Chain to the previous disposition. */
	if (segv_prev.sa_flags & SA_SIGINFO) {
		if (segv_prev.sa_sigaction != NULL) {
			segv_prev.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (segv_prev.sa_handler != SIG_DFL &&
	    segv_prev.sa_handler != SIG_IGN) {
		segv_prev.sa_handler(sig);
		return;
	}
	/* Default (an ignored SIGSEGV would loop): die with the kernel's
	 * action when the instruction runs again. */
	signal(sig, SIG_DFL);
}

int
segv_install(void)
{
	struct sigaction sa;

	if (segv_installed)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &segv_prev) != 0)
		return -1;
	segv_installed = true;
	return 0;
}

void
segv_uninstall(void)
{
	struct sigaction cur;

	if (!segv_installed)
		return;
	/* Restore only if nobody installed a handler over ours since. */
	if (sigaction(SIGSEGV, NULL, &cur) == 0 &&
	    (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == segv_handler)
		sigaction(SIGSEGV, &segv_prev, NULL);
	segv_installed = false;
}
