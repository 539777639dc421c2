/*
 * preload.c: libusrvm-preload.so, the malloc of an unmodified program
 * (LD_PRELOAD, or usrvm-run).
 *
 * Every allocation function of glibc is replaced by the usrvm allocator
 * over the default space, started inside the first call (other
 * libraries' constructors allocate before any of ours would run).  The
 * configuration is the USRVM_* environment; a malformed variable is
 * named on stderr and keeps its default, so the program runs anyway.
 *
 * What is not ours goes to glibc ("the fallback"): allocations made
 * while the runtime starts, by the runtime's own threads, or from inside
 * the allocator's calls into usrvm (a fault thread must never touch
 * managed memory); everything when the runtime cannot start here (no
 * userfaultfd, say: one line on stderr says why) and in a fork child
 * that could not make the runtime its own (fork.c: it keeps a resident
 * copy of the heap, unmanaged, and allocates from glibc from then on;
 * otherwise the child goes on with the heap).  free() tells the two apart with
 * one range check.  Before glibc's functions are looked up, a small
 * static arena serves the lookup itself.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "trace.h"
#include "usrvm_internal.h"

#define EXPORT	__attribute__((visibility("default")))

enum { P_UNINIT, P_STARTING, P_READY, P_OFF, P_CHILD };
static _Atomic int p_state = P_UNINIT;

/* glibc's own functions (RTLD_NEXT), once looked up. */
static void *(*g_malloc)(size_t);
static void (*g_free)(void *);
static void *(*g_calloc)(size_t, size_t);
static void *(*g_realloc)(void *, size_t);
static void *(*g_memalign)(size_t, size_t);
static size_t (*g_usable)(void *);

/* ------------------------------------------------------------------ */
/* The bootstrap arena (before glibc's functions are known)            */
/* ------------------------------------------------------------------ */

#define BOOT_SIZE	(256 * 1024)
static _Alignas(64) char boot_arena[BOOT_SIZE];
static _Atomic size_t boot_used;

/* Each block is preceded by 16 bytes holding its size. */
static void *
boot_alloc(size_t size, size_t align)
{
	size_t need, off, start;

	if (align < 16)
		align = 16;
	if (size > BOOT_SIZE || align > 4096)
		return NULL;
	need = (size + 15) & ~(size_t)15;
	off = atomic_load(&boot_used);
	do {
		start = (off + 16 + align - 1) & ~(align - 1);
		if (start + need > BOOT_SIZE)
			return NULL;
	} while (!atomic_compare_exchange_weak(&boot_used, &off,
	    start + need));
	*(size_t *)(boot_arena + start - 16) = size;
	return boot_arena + start;
}

static inline bool
boot_owns(const void *p)
{
	return (const char *)p >= boot_arena &&
	    (const char *)p < boot_arena + BOOT_SIZE;
}

static size_t
boot_size(const void *p)
{
	return *(const size_t *)((const char *)p - 16);
}

/* ------------------------------------------------------------------ */
/* Start-up                                                            */
/* ------------------------------------------------------------------ */

static void
p_fork_prepare(void)
{
	if (p_state == P_READY)
		alloc_fork_prepare();
}

static void
p_fork_parent(void)
{
	if (p_state == P_READY)
		alloc_fork_parent();
}

static void
p_fork_child(void)
{
	if (p_state != P_READY)
		return;
	alloc_fork_child();
	/* The runtime's handler ran first: paging on its own, the child
	 * goes on with the heap; otherwise it has a plain copy of it. */
	if (!usrvm_is_running())
		p_state = P_CHILD;
}

/*
 * The summary at exit, when usrvm-run asked for it (USRVM_STATS is the
 * process id it is meant for, so the program's children keep quiet),
 * printed once: from atexit, or from _exit and _Exit, which a program
 * may end with (they skip atexit).  A vfork child shares this memory and
 * may call _exit too: the process id tells it apart.  The fault trace
 * (USRVM_TRACE) is written then too (trace_flush tells its own process
 * apart the same way).
 */
static int p_stats_fd = -1;	/* stderr, kept from the start */
static pid_t p_stats_pid;
static atomic_flag p_stats_done = ATOMIC_FLAG_INIT;

static void
p_exit(void)
{
	if (p_state == P_READY)
		trace_flush();
	if (p_stats_fd >= 0 && p_state == P_READY &&
	    getpid() == p_stats_pid &&
	    !atomic_flag_test_and_set(&p_stats_done)) {
		alloc_in_vm = true;
		(void)usrvm_stats_print(p_stats_fd);
		alloc_in_vm = false;
	}
}

EXPORT void
_exit(int status)
{
	p_exit();
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}

EXPORT void
_Exit(int status)
{
	_exit(status);
}

static void
p_start(void)
{
	struct usrvm_config cfg;
	const char *v;
	size_t dirty_max;
	int error;

	g_malloc = dlsym(RTLD_NEXT, "malloc");
	g_free = dlsym(RTLD_NEXT, "free");
	g_calloc = dlsym(RTLD_NEXT, "calloc");
	g_realloc = dlsym(RTLD_NEXT, "realloc");
	g_memalign = dlsym(RTLD_NEXT, "memalign");
	g_usable = dlsym(RTLD_NEXT, "malloc_usable_size");
	if (!g_malloc || !g_free || !g_calloc || !g_realloc || !g_memalign ||
	    !g_usable) {
		/* Not under glibc as we know it: nothing to fall back on,
		 * so the arena serves the lot (and this says so). */
		usrvm_log(USRVM_LOG_ERR, "preload: glibc's malloc not found");
		p_state = P_OFF;
		return;
	}
	(void)config_load(&cfg, false);
	/* A program this one runs (exec) would trace into the same file;
	 * the path stays valid (unsetenv drops the pointer, not the
	 * string). */
	if (cfg.trace_path != NULL)
		(void)unsetenv("USRVM_TRACE");
	if ((error = usrvm_init(&cfg)) != 0) {
		usrvm_log(USRVM_LOG_ERR, "preload: cannot start (%s); the "
		    "program runs on glibc's malloc", strerror(-error));
		p_state = P_OFF;
		return;
	}
	/* Free pages kept resident before they go back to the pager: up
	 * to a quarter of the budget (they count against it, and the daemon
	 * would write them out as if they held data), at most 64 MiB. */
	dirty_max = cfg.mem_limit != 0 ? MIN((size_t)64 << 20,
	    MAX((size_t)1 << 20, cfg.mem_limit / 4)) : (size_t)64 << 20;
	if ((error = alloc_init(usrvm_default_space(), dirty_max)) != 0) {
		usrvm_log(USRVM_LOG_ERR, "preload: cannot start the allocator "
		    "(%s); the program runs on glibc's malloc",
		    strerror(error));
		usrvm_shutdown();
		p_state = P_OFF;
		return;
	}
	/* After usrvm_init registered the runtime's: see fork.c. */
	(void)pthread_atfork(p_fork_prepare, p_fork_parent, p_fork_child);
	/* A copy of stderr: programs close theirs in their own exit
	 * handlers (coreutils' close_stdout), which run before this one. */
	if ((v = getenv("USRVM_STATS")) != NULL && atol(v) == (long)getpid()) {
		p_stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 100);
		p_stats_pid = getpid();
	}
	if (p_stats_fd >= 0 || cfg.trace_path != NULL)
		(void)atexit(p_exit);
	p_state = P_READY;
}

/* Should this call go to usrvm?  Starts the runtime on first use. */
static inline bool
p_ours(void)
{
	static __thread bool starting
	    __attribute__((tls_model("initial-exec")));
	int st = atomic_load_explicit(&p_state, memory_order_acquire);
	int expect = P_UNINIT;

	if (likely(st == P_READY))
		return !alloc_in_vm && !usrvm_runtime_thread;
	if (st != P_UNINIT || starting || !atomic_compare_exchange_strong(
	    &p_state, &expect, P_STARTING))
		return false;
	starting = true;
	p_start();
	starting = false;
	return p_state == P_READY && !alloc_in_vm;
}

/* ------------------------------------------------------------------ */
/* The fallback                                                        */
/* ------------------------------------------------------------------ */

static void *
f_memalign(size_t align, size_t size)
{
	if (g_memalign != NULL)
		return g_memalign(align, size);
	return boot_alloc(size, align);
}

static void *
f_malloc(size_t size)
{
	return g_malloc != NULL ? g_malloc(size) : boot_alloc(size, 16);
}

/* The usable size of any block: ours, the arena's or glibc's. */
static size_t
p_usable(void *p)
{
	if (p == NULL)
		return 0;
	if (alloc_owns(p))
		return alloc_usable_size(p);
	if (boot_owns(p))
		return boot_size(p);
	return g_usable != NULL ? g_usable(p) : 0;
}

/* ------------------------------------------------------------------ */
/* The interface                                                       */
/* ------------------------------------------------------------------ */

EXPORT void *
malloc(size_t size)
{
	if (likely(p_ours()))
		return alloc_malloc(size);
	return f_malloc(size);
}

EXPORT void
free(void *p)
{
	int saved;

	if (p == NULL)
		return;
	saved = errno;
	if (likely(alloc_owns(p))) {
		/* In a fork child with no runtime the heap is a plain
		 * copy: leave it. */
		if (likely(p_state == P_READY))
			alloc_free(p);
	} else if (!boot_owns(p) && g_free != NULL) {
		g_free(p);
	}
	errno = saved;
}

EXPORT void *
calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (likely(p_ours()))
		return alloc_calloc(n, size);
	if (g_calloc != NULL)
		return g_calloc(n, size);
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	/* The arena is static: zero until handed out. */
	p = boot_alloc(total, 16);
	return p;
}

EXPORT void *
realloc(void *p, size_t size)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(size);
	if (alloc_owns(p) && p_state == P_READY && !alloc_in_vm &&
	    !usrvm_runtime_thread)
		return alloc_realloc(p, size);
	if (!alloc_owns(p) && !boot_owns(p) && g_realloc != NULL)
		return g_realloc(p, size);
	/* A block of ours reached from the fallback side (a fork child,
	 * a runtime thread), or one of the arena: move it. */
	if (size == 0) {
		free(p);
		return NULL;
	}
	old = p_usable(p);
	if ((q = malloc(size)) == NULL)
		return NULL;
	memcpy(q, p, MIN(old, size));
	free(p);
	return q;
}

EXPORT void *
reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

EXPORT void *
memalign(size_t align, size_t size)
{
	/* glibc's rules: an alignment that is not a power of two is
	 * rounded up to one; beyond half the address space, EINVAL. */
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (align < 16)
		align = 16;
	else if ((align & (align - 1)) != 0)
		align = (size_t)1 << (64 - __builtin_clzll(align));
	if (likely(p_ours()))
		return alloc_memalign(align, size);
	return f_memalign(align, size);
}

EXPORT int
posix_memalign(void **out, size_t align, size_t size)
{
	int saved = errno, error = 0;
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	if ((p = memalign(align, size)) == NULL)
		error = errno != 0 ? errno : ENOMEM;
	else
		*out = p;
	errno = saved;
	return error;
}

EXPORT void *
aligned_alloc(size_t align, size_t size)
{
	return memalign(align, size);
}

EXPORT void *
valloc(size_t size)
{
	return memalign(PAGE_SIZE, size);
}

EXPORT void *
pvalloc(size_t size)
{
	size_t rounded = round_page(size);

	if (rounded < size) {
		errno = ENOMEM;
		return NULL;
	}
	return memalign(PAGE_SIZE, rounded == 0 ? PAGE_SIZE : rounded);
}

EXPORT size_t
malloc_usable_size(void *p)
{
	return p_usable(p);
}

EXPORT void
cfree(void *p)
{
	free(p);
}

/* glibc's internal names, which some programs call directly. */
EXPORT void *__libc_malloc(size_t size) { return malloc(size); }
EXPORT void __libc_free(void *p) { free(p); }
EXPORT void *__libc_calloc(size_t n, size_t size) { return calloc(n, size); }
EXPORT void *__libc_realloc(void *p, size_t size) { return realloc(p, size); }
EXPORT void *__libc_memalign(size_t align, size_t size)
{ return memalign(align, size); }
EXPORT void *__libc_valloc(size_t size) { return valloc(size); }
EXPORT void *__libc_pvalloc(size_t size) { return pvalloc(size); }

/* ------------------------------------------------------------------ */
/* glibc's tuning and reporting calls: harmless here                   */
/* ------------------------------------------------------------------ */

EXPORT int
mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1;
}

EXPORT int
malloc_trim(size_t pad)
{
	(void)pad;
	if (p_state != P_READY)
		return 0;
	return alloc_trim() > 0;
}

EXPORT struct mallinfo2
mallinfo2(void)
{
	struct mallinfo2 mi;
	struct alloc_stats st = { 0 };

	memset(&mi, 0, sizeof(mi));
	if (p_state == P_READY)
		alloc_stats(&st);
	mi.arena = st.as_inuse + st.as_free_resident + st.as_free_zero;
	mi.uordblks = st.as_inuse;
	mi.fordblks = st.as_free_resident + st.as_free_zero;
	mi.keepcost = st.as_free_resident;
	return mi;
}

EXPORT struct mallinfo
mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi;

	memset(&mi, 0, sizeof(mi));
	mi.arena = (int)MIN(m2.arena, (size_t)INT32_MAX);
	mi.uordblks = (int)MIN(m2.uordblks, (size_t)INT32_MAX);
	mi.fordblks = (int)MIN(m2.fordblks, (size_t)INT32_MAX);
	mi.keepcost = (int)MIN(m2.keepcost, (size_t)INT32_MAX);
	return mi;
}

EXPORT void
malloc_stats(void)
{
	struct mallinfo2 mi = mallinfo2();

	fprintf(stderr, "usrvm heap: in use %zu bytes, free %zu bytes "
	    "(%zu resident)\n", mi.uordblks, mi.fordblks, mi.keepcost);
}

EXPORT int
malloc_info(int options, FILE *fp)
{
	struct mallinfo2 mi = mallinfo2();

	if (options != 0) {
		errno = EINVAL;
		return -1;
	}
	fprintf(fp, "<malloc version=\"usrvm-1\">\n<total type=\"inuse\" "
	    "size=\"%zu\"/>\n<total type=\"free\" size=\"%zu\"/>\n"
	    "</malloc>\n", mi.uordblks, mi.fordblks);
	return 0;
}
