/*
 * test_preload.c: libusrvm-preload.so under a program that knows nothing
 * of it.  ctest runs this with LD_PRELOAD set to the preload and a small
 * USRVM_MEM; the binary itself links neither usrvm nor its headers, and
 * calls malloc and friends as any program does.
 *
 * The suite runs in one process (CK_NOFORK): libcheck's process per
 * test would start every test in a fork child, which is a case of its
 * own (the "fork" cases).  Children made here report through their exit
 * status and stderr, never through libcheck.
 *
 * A block is "ours" when the mapping holding it is registered with
 * userfaultfd (VmFlags "um" in /proc/self/smaps): usrvm's heap is, glibc's
 * heap and mappings are not.
 *
 *	test_preload		the interface, the heap, C++ (USRVM_MEM=16M)
 *	test_preload fork	fork(2) with the heap swapped out, with
 *				threads, and exec (USRVM_MEM=16M)
 *	test_preload exhaust	running out of memory (USRVM_MEM=4M,
 *				USRVM_SWAP_SIZE=8M; CK_RUN_CASE=large or
 *				small, one process each)
 *	test_preload prog	a small program for test_usrvm_run.sh: 24 MiB
 *				written and checked; prints "preload ok"
 *	test_preload prog-spawn	prog, then prog again in a child process
 *	test_preload cxx-throw	a failing throwing operator new (dies)
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_EXIT_SKIP	77
#define PAGE		4096UL
#define KIB		((size_t)1 << 10)
#define MIB		((size_t)1 << 20)

/* glibc's internal names: the preload exports them. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
/* cfree: glibc keeps it for old binaries only (no link-time symbol). */
static void (*cfree)(void *);

extern char **environ;

/* For loops: libcheck logs every ck_assert that passes. */
#define A(c) \
	do { if (!(c)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); \
	} while (0)

/* In a child made by a test: no libcheck, a message and exit status 1. */
#define C(c) \
	do { if (!(c)) { c_fail(__LINE__, #c); } } while (0)

static void
c_fail(int line, const char *what)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "child: %s:%d: %s\n", __FILE__,
	    line, what);

	(void)!write(STDERR_FILENO, buf, (size_t)n);
	_exit(1);
}

/* Sizes too large for gcc's -Walloc-size-larger-than to see. */
static volatile size_t huge = (size_t)1 << 62;
static volatile size_t size_max = SIZE_MAX;

/* ------------------------------------------------------------------ */
/* The process's mappings                                              */
/* ------------------------------------------------------------------ */

struct vma {
	uintptr_t lo, hi;
	size_t rss_kb;
	bool um;		/* registered with userfaultfd (missing) */
};

#define NVMA	4096
static struct vma vmas[NVMA];
static char smaps_buf[4 << 20];

/*
 * Read /proc/self/smaps into vmas[] (read(2) into a static buffer: this
 * works with the heap exhausted, and in a fork child).  => the count.
 */
static size_t
smaps_read(void)
{
	size_t len = 0, n = 0;
	ssize_t got;
	char *line, *next;
	int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	while (len < sizeof(smaps_buf) - 1 && (got = read(fd, smaps_buf + len,
	    sizeof(smaps_buf) - 1 - len)) > 0)
		len += (size_t)got;
	close(fd);
	smaps_buf[len] = '\0';
	for (line = smaps_buf; line != NULL && *line != '\0'; line = next) {
		unsigned long lo, hi;
		char *sp = strchr(line, ' ');

		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (sp != NULL && sp > line && sp[-1] != ':' &&
		    sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			if (n == NVMA)
				break;
			vmas[n].lo = lo;
			vmas[n].hi = hi;
			vmas[n].rss_kb = 0;
			vmas[n].um = false;
			n++;
		} else if (n > 0 && strncmp(line, "Rss:", 4) == 0) {
			vmas[n - 1].rss_kb = strtoul(line + 4, NULL, 10);
		} else if (n > 0 && strncmp(line, "VmFlags:", 8) == 0) {
			vmas[n - 1].um = strstr(line, " um") != NULL;
		}
	}
	return n;
}

/* Is every byte of [p, p + len) in usrvm's heap? */
static bool
is_ours(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, z = a + (len > 0 ? len - 1 : 0);
	size_t n = smaps_read();
	bool first = false, last = false;

	for (size_t i = 0; i < n; i++) {
		if (vmas[i].lo <= a && a < vmas[i].hi)
			first = vmas[i].um;
		if (vmas[i].lo <= z && z < vmas[i].hi)
			last = vmas[i].um;
	}
	return first && last;
}

#define ck_ours(p, len) \
	ck_assert_msg(is_ours((p), (len)), "%p (%zu bytes) is not in usrvm's " \
	    "heap", (void *)(p), (size_t)(len))

/* Bytes of usrvm's heap resident now. */
static size_t
heap_rss(void)
{
	size_t n = smaps_read(), kb = 0;

	for (size_t i = 0; i < n; i++)
		if (vmas[i].um)
			kb += vmas[i].rss_kb;
	return kb * KIB;
}

/* The heap's ranges now (to recognize its blocks in a fork child). */
static struct vma heap_vma[64];
static size_t heap_nvma;

static void
heap_ranges(void)
{
	size_t n = smaps_read();

	heap_nvma = 0;
	for (size_t i = 0; i < n && heap_nvma < 64; i++)
		if (vmas[i].um)
			heap_vma[heap_nvma++] = vmas[i];
}

static bool
in_heap_ranges(const void *p)
{
	for (size_t i = 0; i < heap_nvma; i++)
		if (heap_vma[i].lo <= (uintptr_t)p &&
		    (uintptr_t)p < heap_vma[i].hi)
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Patterns, sizes, randomness                                         */
/* ------------------------------------------------------------------ */

static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Fill n bytes at p with words derived from (id, tag, offset): the
 * bytes of a shorter fill are a prefix of a longer one's. */
static void
fill(void *p, size_t n, uint64_t id, uint64_t tag)
{
	uint64_t base = mix(id * 0x100000001b3ull ^ (tag << 48));
	unsigned char *b = p;
	size_t w = n / 8;

	for (size_t i = 0; i < w; i++) {
		uint64_t v = base ^ (i * 0x9e3779b97f4a7c15ull);
		memcpy(b + 8 * i, &v, 8);
	}
	if (n % 8 != 0) {	/* the first bytes of the next word */
		uint64_t v = base ^ (w * 0x9e3779b97f4a7c15ull);
		memcpy(b + 8 * w, &v, n % 8);
	}
}

/* => the offset of the first byte that differs from fill(), or -1. */
static ssize_t
verify(const void *p, size_t n, uint64_t id, uint64_t tag)
{
	uint64_t base = mix(id * 0x100000001b3ull ^ (tag << 48));
	const unsigned char *b = p;
	size_t w = n / 8;

	for (size_t i = 0; i < w; i++) {
		uint64_t v;
		memcpy(&v, b + 8 * i, 8);
		if (v != (base ^ (i * 0x9e3779b97f4a7c15ull)))
			return (ssize_t)(8 * i);
	}
	if (n % 8 != 0) {
		uint64_t v = base ^ (w * 0x9e3779b97f4a7c15ull);
		unsigned char t[8];
		memcpy(t, &v, 8);
		for (size_t i = 0; i < n % 8; i++)
			if (b[8 * w + i] != t[i])
				return (ssize_t)(8 * w + i);
	}
	return -1;
}

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* A size from 1 byte to `max`, about evenly spread over the powers of
 * two (so every small class, the page heap and own mappings are hit). */
static size_t
rnd_size(uint64_t (*r)(void *), void *arg, size_t max)
{
	unsigned bits = 64 - (unsigned)__builtin_clzll(max);
	unsigned k = (unsigned)(r(arg) % bits);
	size_t s = ((size_t)1 << k) + r(arg) % ((size_t)1 << k);

	return s > max ? max : s;
}

static uint64_t
rnd_global(void *arg)
{
	(void)arg;
	return rnd();
}

/* A size from the environment ("16M"), 0 if unset or malformed. */
static size_t
env_size(const char *name)
{
	const char *v = getenv(name);
	char *end;
	size_t n;

	if (v == NULL || *v < '0' || *v > '9')
		return 0;
	n = strtoul(v, &end, 10);
	switch (*end) {
	case 'K': case 'k': n <<= 10; break;
	case 'M': case 'm': n <<= 20; break;
	case 'G': case 'g': n <<= 30; break;
	default: break;
	}
	return n;
}

static size_t
budget(void)
{
	size_t b = env_size("USRVM_MEM");

	ck_assert_msg(b != 0, "USRVM_MEM is not set (ctest sets it)");
	return b;
}

/* Wait for a child, at most `secs` seconds.  => its status, or -1 if
 * it had to be killed (no libcheck here: threads may be running). */
static int
child_wait(pid_t pid, int secs)
{
	int status;
	pid_t r;

	for (int i = 0; i < secs * 100; i++) {
		if ((r = waitpid(pid, &status, WNOHANG)) == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	(void)waitpid(pid, &status, 0);
	return -1;
}

static int
wait_child(pid_t pid, int secs)
{
	int status = child_wait(pid, secs);

	ck_assert_msg(status != -1, "child %d hung (killed after %d s)",
	    (int)pid, secs);
	return status;
}

static char self_path[4096];

/* Run this program again with `mode`; its stderr into err.  => status. */
static int
run_self(const char *mode, char *err, size_t errlen)
{
	char *argv[] = { self_path, (char *)mode, NULL };
	posix_spawn_file_actions_t fa;
	int pfd[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], STDERR_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
	    O_WRONLY, 0);
	ck_assert_int_eq(posix_spawn(&pid, self_path, &fa, NULL, argv,
	    environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	while (got < errlen - 1 && (n = read(pfd[0], err + got,
	    errlen - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = '\0';
	close(pfd[0]);
	status = wait_child(pid, 30);
	return status;
}

/*
 * A watchdog per test: one process runs them all, so a test that hangs
 * (a fault never served, say) would otherwise hang the rest until
 * ctest's timeout.  It says which test and ends the process.
 */
#define WATCHDOG_S	30

static void
watchdog_fire(int sig)
{
	char buf[256];
	const char *tc = tcase_name();
	int n = snprintf(buf, sizeof(buf), "test_preload: test '%s' still "
	    "running after %d s: hung (the process ends here)\n",
	    tc != NULL ? tc : "?", WATCHDOG_S);

	(void)sig;
	(void)!write(STDERR_FILENO, buf, (size_t)n);
	_exit(1);
}

static void
watchdog_start(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watchdog_fire;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	alarm(WATCHDOG_S);
}

static void
watchdog_stop(void)
{
	alarm(0);
}

/* ------------------------------------------------------------------ */
/* The interface                                                       */
/* ------------------------------------------------------------------ */

static const char *const exported[] = {
	"malloc", "free", "calloc", "realloc", "reallocarray", "memalign",
	"posix_memalign", "aligned_alloc", "valloc", "pvalloc",
	"malloc_usable_size", "cfree",
	"__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc",
	"__libc_memalign", "__libc_valloc", "__libc_pvalloc",
	"mallopt", "malloc_trim", "mallinfo", "mallinfo2", "malloc_stats",
	"malloc_info",
	"_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
	"_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
	"_ZnwmSt11align_val_tRKSt9nothrow_t",
	"_ZnamSt11align_val_tRKSt9nothrow_t",
	"_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
	"_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
	"_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
	"_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
	"_ZdlPvSt11align_val_tRKSt9nothrow_t",
	"_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

/* Is symbol `name`, as the program finds it, the preload's? */
static bool
from_preload(const char *name)
{
	void *sym = dlsym(RTLD_DEFAULT, name);
	Dl_info di;

	return sym != NULL && dladdr(sym, &di) != 0 && di.dli_fname != NULL &&
	    strstr(di.dli_fname, "libusrvm-preload") != NULL;
}

START_TEST(exports_resolve_to_preload)
{
	for (size_t i = 0; i < sizeof(exported) / sizeof(*exported); i++)
		ck_assert_msg(from_preload(exported[i]), "%s is not the "
		    "preload's", exported[i]);
}
END_TEST

START_TEST(malloc_sizes)
{
	static const size_t sizes[] = { 0, 1, 7, 8, 15, 16, 17, 100, 128,
	    129, 1000, 4095, 4096, 4097, 32767, 32768, 32769, 65536, 200000,
	    MIB - 1, MIB, MIB + 1, 3 * MIB + 5 };
	void *p[sizeof(sizes) / sizeof(*sizes)];
	size_t n = sizeof(sizes) / sizeof(*sizes);

	for (size_t i = 0; i < n; i++) {
		size_t u;

		p[i] = malloc(sizes[i]);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert_uint_eq((uintptr_t)p[i] % 16, 0);
		u = malloc_usable_size(p[i]);
		ck_assert_uint_ge(u, sizes[i]);
		ck_assert_uint_ge(u, 1);
		ck_ours(p[i], u);
		fill(p[i], u, i, 1);	/* all of the usable size */
		for (size_t j = 0; j < i; j++)
			ck_assert_ptr_ne(p[i], p[j]);
	}
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(verify(p[i], malloc_usable_size(p[i]), i, 1),
		    -1);
		free(p[i]);
	}
	ck_assert_uint_eq(malloc_usable_size(NULL), 0);
	free(NULL);

	errno = 0;
	ck_assert_ptr_null(malloc(size_max));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(malloc(huge));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

/* calloc zeroes reused memory, in every part of the allocator. */
START_TEST(calloc_zeroes)
{
	static const size_t sizes[] = { 1, 24, 200, 4096, 20000, 32768,
	    40000, 300000, 2 * MIB, 5 * MIB + 3 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		for (int round = 0; round < 3; round++) {
			unsigned char *p = malloc(sizes[i]), *q;

			ck_assert_ptr_nonnull(p);
			memset(p, 0xa5, sizes[i]);
			free(p);
			q = calloc(1, sizes[i]);
			ck_assert_ptr_nonnull(q);
			ck_ours(q, sizes[i]);
			for (size_t j = 0; j < sizes[i]; j++)
				if (q[j] != 0)
					ck_abort_msg("calloc(%zu) byte %zu is "
					    "%#x", sizes[i], j, q[j]);
			free(q);
		}
	}
	{
		uint32_t *a = calloc(1000, sizeof(uint32_t));
		ck_assert_ptr_nonnull(a);
		for (int i = 0; i < 1000; i++)
			A(a[i] == 0);
		free(a);
	}
	{
		void *p = calloc(0, 10), *q = calloc(10, 0);
		ck_assert_ptr_nonnull(p);
		ck_assert_ptr_nonnull(q);
		free(p);
		free(q);
	}
	errno = 0;
	ck_assert_ptr_null(calloc(size_max / 2, 3));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(calloc(huge / 2, 64));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(__libc_calloc(size_max, 2));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

START_TEST(realloc_keeps_contents)
{
	static const size_t steps[] = { 1, 10, 100, 5000, 40000, 500000,
	    2 * MIB, 3 * MIB, 100000, 3000, 20, 2, 64 * KIB, 1 };
	size_t n = 0;
	void *p = NULL, *q;
	ssize_t bad;

	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		size_t m = steps[i];

		p = realloc(p, m);
		ck_assert_ptr_nonnull(p);
		ck_ours(p, m);
		ck_assert_uint_ge(malloc_usable_size(p), m);
		/* What was there survives; then all of it is rewritten. */
		bad = verify(p, n < m ? n : m, 7, i);
		ck_assert_msg(bad == -1, "realloc from %zu to %zu bytes: byte "
		    "%zd differs", n, m, bad);
		fill(p, m, 7, i + 1);
		n = m;
	}
	/* realloc(p, 0) frees and returns NULL, as glibc's does. */
	ck_assert_ptr_null(realloc(p, 0));

	/* A failed realloc leaves the block as it was. */
	p = malloc(1000);
	ck_assert_ptr_nonnull(p);
	fill(p, 1000, 8, 0);
	errno = 0;
	ck_assert_ptr_null(realloc(p, huge));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_eq(verify(p, 1000, 8, 0), -1);

	/* reallocarray: n * size, and ENOMEM when that overflows. */
	q = reallocarray(p, 300, 10);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_ge(malloc_usable_size(q), 3000);
	ck_assert_int_eq(verify(q, 1000, 8, 0), -1);
	errno = 0;
	ck_assert_ptr_null(reallocarray(q, size_max / 2, 3));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(reallocarray(q, huge, 8));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_eq(verify(q, 1000, 8, 0), -1);
	free(q);
	p = reallocarray(NULL, 64, 64);
	ck_assert_ptr_nonnull(p);
	ck_ours(p, 4096);
	errno = 0;
	ck_assert_ptr_null(reallocarray(NULL, size_max, 2));
	ck_assert_int_eq(errno, ENOMEM);

	/* __libc_realloc is the same function. */
	p = __libc_realloc(p, 100000);
	ck_assert_ptr_nonnull(p);
	ck_ours(p, 100000);
	free(p);
}
END_TEST

static void
check_aligned(void *p, size_t align, size_t size, const char *fn)
{
	size_t u;

	ck_assert_msg(p != NULL, "%s(%zu, %zu): %s", fn, align, size,
	    strerror(errno));
	ck_assert_msg((uintptr_t)p % align == 0, "%s(%zu, %zu) = %p", fn,
	    align, size, p);
	u = malloc_usable_size(p);
	ck_assert_uint_ge(u, size);
	ck_ours(p, u > 0 ? u : 1);
	fill(p, u, align, size);
	ck_assert_int_eq(verify(p, u, align, size), -1);
}

/* Every alignment from 1 byte to 1 MiB, with sizes around it. */
START_TEST(alignments)
{
	for (size_t align = 1; align <= MIB; align *= 2) {
		const size_t sizes[] = { 1, align / 2 + 1, align, align + 1,
		    3 * align + 40 };
		for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
			size_t size = sizes[i];
			void *p[6];
			int error;

			p[0] = memalign(align, size);
			check_aligned(p[0], align, size, "memalign");
			p[1] = aligned_alloc(align, size);
			check_aligned(p[1], align, size, "aligned_alloc");
			p[2] = __libc_memalign(align, size);
			check_aligned(p[2], align, size, "__libc_memalign");
			p[3] = NULL;
			if (align >= sizeof(void *)) {
				errno = 4321;
				error = posix_memalign(&p[3], align, size);
				ck_assert_int_eq(error, 0);
				ck_assert_int_eq(errno, 4321);
				check_aligned(p[3], align, size,
				    "posix_memalign");
			}
			p[4] = valloc(size);
			check_aligned(p[4], PAGE, size, "valloc");
			p[5] = __libc_valloc(size);
			check_aligned(p[5], PAGE, size, "__libc_valloc");
			for (int j = 0; j < 6; j++)
				free(p[j]);
		}
	}
}
END_TEST

START_TEST(posix_memalign_errors)
{
	static const size_t bad[] = { 0, 1, 2, 4, 12, 24, 48, 4097,
	    (size_t)1 << 63 | 8 };
	void *p = (void *)0x1234;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		errno = 4321;
		ck_assert_int_eq(posix_memalign(&p, bad[i], 100), EINVAL);
		ck_assert_int_eq(errno, 4321);
		ck_assert_ptr_eq(p, (void *)0x1234);
	}
	errno = 4321;
	ck_assert_int_eq(posix_memalign(&p, 64, huge), ENOMEM);
	ck_assert_int_eq(errno, 4321);
	ck_assert_ptr_eq(p, (void *)0x1234);
	errno = 4321;
	ck_assert_int_eq(posix_memalign(&p, MIB, huge), ENOMEM);
	ck_assert_int_eq(errno, 4321);
	ck_assert_ptr_eq(p, (void *)0x1234);
	/* The largest power of two as alignment: no such block. */
	errno = 4321;
	ck_assert_int_eq(posix_memalign(&p, (size_t)1 << 63, 100), ENOMEM);
	ck_assert_int_eq(errno, 4321);
	ck_assert_ptr_eq(p, (void *)0x1234);

	/* size 0: a block that can be freed. */
	ck_assert_int_eq(posix_memalign(&p, 256, 0), 0);
	ck_assert_ptr_ne(p, (void *)0x1234);
	ck_assert_uint_eq((uintptr_t)p % 256, 0);
	free(p);

	/* Not powers of two: rounded up to one, as glibc 2.36 does for
	 * memalign and aligned_alloc; 0 means no alignment. */
	p = aligned_alloc(24, 48);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % 32, 0);
	free(p);
	p = memalign(0, 48);
	ck_assert_ptr_nonnull(p);
	free(p);
	p = memalign(3000, 100);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % 4096, 0);
	free(p);
	errno = 0;
	ck_assert_ptr_null(memalign(((size_t)1 << 63) + 1, 48));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(memalign(64, huge));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

START_TEST(valloc_pvalloc)
{
	void *p;

	p = pvalloc(1);
	check_aligned(p, PAGE, PAGE, "pvalloc");	/* rounded up */
	free(p);
	p = pvalloc(0);
	check_aligned(p, PAGE, PAGE, "pvalloc");
	free(p);
	p = pvalloc(3 * PAGE + 1);
	check_aligned(p, PAGE, 4 * PAGE, "pvalloc");
	free(p);
	p = __libc_pvalloc(5000);
	check_aligned(p, PAGE, 2 * PAGE, "__libc_pvalloc");
	free(p);
	p = valloc(0);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % PAGE, 0);
	free(p);
	errno = 0;
	ck_assert_ptr_null(pvalloc(size_max - 100));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(valloc(huge));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

/* free and its aliases leave errno alone, whatever they unmap. */
START_TEST(free_keeps_errno)
{
	static const size_t sizes[] = { 10, 5000, 100000, 2 * MIB, 8 * MIB };
	void (*const frees[])(void *) = { free, cfree, __libc_free };

	ck_assert_ptr_nonnull(cfree);

	for (size_t f = 0; f < 3; f++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
			void *p = malloc(sizes[i]);

			ck_assert_ptr_nonnull(p);
			memset(p, 1, sizes[i]);
			errno = 1234;
			frees[f](p);
			ck_assert_msg(errno == 1234, "free #%zu of %zu bytes: "
			    "errno %d", f, sizes[i], errno);
		}
		errno = 1234;
		frees[f](NULL);
		ck_assert_int_eq(errno, 1234);
	}
}
END_TEST

START_TEST(libc_aliases)
{
	char *p = __libc_malloc(300), *q;

	ck_assert_ptr_nonnull(p);
	ck_ours(p, 300);
	fill(p, 300, 1, 2);
	q = __libc_realloc(p, 70000);
	ck_assert_ptr_nonnull(q);
	ck_ours(q, 70000);
	ck_assert_int_eq(verify(q, 300, 1, 2), -1);
	__libc_free(q);
	p = __libc_calloc(3, 5000);
	ck_assert_ptr_nonnull(p);
	ck_ours(p, 15000);
	for (size_t i = 0; i < 15000; i++)
		A(p[i] == 0);
	cfree(p);
	p = __libc_memalign(4096, 10);
	ck_assert_ptr_nonnull(p);
	ck_ours(p, 10);
	ck_assert_uint_eq((uintptr_t)p % 4096, 0);
	__libc_free(p);
}
END_TEST

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
START_TEST(info_and_tuning)
{
	struct mallinfo2 a, b, c, d;
	struct mallinfo m;
	char *buf = NULL, line[512];
	size_t len = 0;
	FILE *fp;
	void *p;
	int pfd[2], saved, t1, t2;
	ssize_t n;

	ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
	ck_assert_int_eq(mallopt(M_ARENA_MAX, 1), 1);

	/* mallinfo2 follows what is in use (a page-heap block: 256K). */
	a = mallinfo2();
	p = malloc(256 * KIB);
	ck_assert_ptr_nonnull(p);
	memset(p, 3, 256 * KIB);
	b = mallinfo2();
	ck_assert_uint_ge(b.uordblks, a.uordblks + 256 * KIB);
	ck_assert_uint_eq(b.arena, b.uordblks + b.fordblks);
	ck_assert_uint_le(b.keepcost, b.fordblks);
	m = mallinfo();
	ck_assert_int_eq(m.uordblks, (int)b.uordblks);
	ck_assert_int_eq(m.arena, (int)b.arena);
	free(p);
	c = mallinfo2();
	ck_assert_uint_le(c.uordblks + 256 * KIB, b.uordblks);

	/* malloc_trim gives every free page back (returning 1 if there
	 * was one): a second call finds none.  (Whether any are resident
	 * before depends on how the allocator decays them on its own.) */
	t1 = malloc_trim(0);
	t2 = malloc_trim(0);
	d = mallinfo2();
	if (c.keepcost > 0)
		ck_assert_int_eq(t1, 1);
	ck_assert_int_eq(t2, 0);
	ck_assert_uint_eq(d.keepcost, 0);
	ck_assert_uint_ge(d.fordblks, c.fordblks);	/* still free */

	/* malloc_info: XML on the stream; options must be 0. */
	fp = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(malloc_info(0, fp), 0);
	fclose(fp);
	ck_assert_ptr_nonnull(strstr(buf, "<malloc version=\"usrvm-1\">"));
	ck_assert_ptr_nonnull(strstr(buf, "<total type=\"inuse\" size=\""));
	ck_assert_ptr_nonnull(strstr(buf, "</malloc>"));
	free(buf);
	errno = 0;
	ck_assert_int_eq(malloc_info(1, stdout), -1);
	ck_assert_int_eq(errno, EINVAL);

	/* malloc_stats: one line on stderr. */
	ck_assert_int_eq(pipe(pfd), 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(pfd[1], STDERR_FILENO);
	malloc_stats();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(pfd[1]);
	n = read(pfd[0], line, sizeof(line) - 1);
	close(pfd[0]);
	ck_assert_int_gt(n, 0);
	line[n] = '\0';
	ck_assert_msg(strncmp(line, "usrvm heap: in use ", 19) == 0 &&
	    strchr(line, '\n') == line + n - 1, "malloc_stats: '%s'", line);
}
END_TEST
#pragma GCC diagnostic pop

/*
 * A heap four times the budget, in blocks of every size, written and
 * read back twice; the heap's resident memory stays near the budget
 * meanwhile (so most of it really went to swap and came back).
 */
START_TEST(heap_over_budget)
{
	size_t mem = budget(), target = 4 * mem, total = 0, n = 0, rss;
	size_t cap = 1 << 16;
	void **blk = malloc(cap * sizeof(*blk));
	size_t *len = malloc(cap * sizeof(*len));

	ck_assert_ptr_nonnull(blk);
	ck_assert_ptr_nonnull(len);
	while (total < target && n < cap) {
		len[n] = rnd_size(rnd_global, NULL, 2 * MIB);
		blk[n] = malloc(len[n]);
		ck_assert_msg(blk[n] != NULL, "malloc(%zu) with %zu in use: %s",
		    len[n], total, strerror(errno));
		fill(blk[n], len[n], n, 0);
		total += len[n++];
	}
	ck_assert_uint_ge(total, target);
	ck_ours(blk[0], len[0]);
	ck_ours(blk[n - 1], len[n - 1]);
	rss = heap_rss();
	ck_assert_msg(rss <= mem + mem / 4, "heap resident %zu bytes, "
	    "budget %zu", rss, mem);
	/* Forwards, then backwards (the coldest first). */
	for (size_t i = 0; i < n; i++) {
		ssize_t bad = verify(blk[i], len[i], i, 0);
		if (bad >= 0)
			ck_abort_msg("block %zu (%zu bytes at %p): byte %zd",
			    i, len[i], blk[i], bad);
		fill(blk[i], len[i], i, 1);
	}
	for (size_t i = n; i-- > 0;) {
		ssize_t bad = verify(blk[i], len[i], i, 1);
		if (bad >= 0)
			ck_abort_msg("block %zu (%zu bytes at %p): byte %zd",
			    i, len[i], blk[i], bad);
	}
	rss = heap_rss();
	ck_assert_msg(rss <= mem + mem / 4, "heap resident %zu bytes, "
	    "budget %zu", rss, mem);
	for (size_t i = 0; i < n; i++)
		free(blk[i]);
	free(blk);
	free(len);
}
END_TEST

/* Threads allocating, writing, checking and freeing each other's. */
#define NSHARED		256
static _Atomic(void *) shared_blk[NSHARED];

struct worker {
	pthread_t w_thread;
	unsigned w_id;
	uint64_t w_rng;
	atomic_bool *w_stop;
	size_t w_iters;
	size_t w_errors;
	size_t w_maxsize;
};

static uint64_t
w_rnd(void *arg)
{
	struct worker *w = arg;
	uint64_t x = w->w_rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->w_rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/*
 * A shared block carries its size and id in its first 16 bytes; the
 * rest is fill()ed from the id.
 */
static void *
w_make(struct worker *w)
{
	size_t size = 16 + rnd_size(w_rnd, w, w->w_maxsize);
	uint64_t id = w_rnd(w);
	unsigned char *p = malloc(size);

	if (p == NULL)
		return NULL;
	memcpy(p, &size, 8);
	memcpy(p + 8, &id, 8);
	fill(p + 16, size - 16, id, 5);
	return p;
}

static bool
w_check(const unsigned char *p)
{
	size_t size;
	uint64_t id;

	memcpy(&size, p, 8);
	memcpy(&id, p + 8, 8);
	return malloc_usable_size((void *)p) >= size &&
	    verify(p + 16, size - 16, id, 5) == -1;
}

static void *
w_run(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(w->w_stop) || w->w_iters < 200) {
		unsigned slot = (unsigned)(w_rnd(w) % NSHARED);
		void *p = w_make(w), *old;

		if (p == NULL) {
			w->w_errors++;
			w->w_iters++;
			continue;
		}
		old = atomic_exchange(&shared_blk[slot], p);
		if (old != NULL) {
			if (!w_check(old))
				w->w_errors++;
			free(old);
		}
		w->w_iters++;
	}
	return NULL;
}

static void
workers_start(struct worker *w, unsigned n, atomic_bool *stop, size_t max)
{
	atomic_store(stop, false);
	for (unsigned i = 0; i < n; i++) {
		w[i].w_id = i;
		w[i].w_rng = mix(i + 1);
		w[i].w_stop = stop;
		w[i].w_iters = w[i].w_errors = 0;
		w[i].w_maxsize = max;
		if (pthread_create(&w[i].w_thread, NULL, w_run, &w[i]) != 0) {
			atomic_store(stop, true);
			while (i-- > 0)
				pthread_join(w[i].w_thread, NULL);
			ck_abort_msg("pthread_create failed");
		}
	}
}

static void
workers_stop(struct worker *w, unsigned n, atomic_bool *stop)
{
	size_t errors = 0;

	atomic_store(stop, true);
	for (unsigned i = 0; i < n; i++) {
		ck_assert_int_eq(pthread_join(w[i].w_thread, NULL), 0);
		errors += w[i].w_errors;
	}
	for (unsigned i = 0; i < NSHARED; i++) {
		void *p = atomic_exchange(&shared_blk[i], NULL);
		if (p != NULL) {
			if (!w_check(p))
				errors++;
			free(p);
		}
	}
	ck_assert_uint_eq(errors, 0);
}

START_TEST(threads_cross_free)
{
	static struct worker w[4];
	static atomic_bool stop;

	workers_start(w, 4, &stop, 256 * KIB);
	usleep(300 * 1000);
	workers_stop(w, 4, &stop);
}
END_TEST

/* ------------------------------------------------------------------ */
/* C++ operators, through their mangled names                          */
/* ------------------------------------------------------------------ */

typedef void *(*new_fn)(size_t);
typedef void *(*new_nt_fn)(size_t, const void *);
typedef void *(*new_al_fn)(size_t, size_t);
typedef void *(*new_al_nt_fn)(size_t, size_t, const void *);

static void *
sym(const char *name)
{
	void *s = dlsym(RTLD_DEFAULT, name);

	ck_assert_msg(s != NULL, "%s: %s", name, dlerror());
	ck_assert_msg(from_preload(name), "%s is not the preload's", name);
	return s;
}

/* Does stmt free the 256 KiB block p?  (The heap's bytes in use drop by
 * at least its size.) */
#define ck_frees(p, stmt) do {						\
	size_t before_ = mallinfo2().uordblks;				\
	stmt;								\
	ck_assert_msg(mallinfo2().uordblks + 256 * KIB <= before_,	\
	    "%s did not free %p", #stmt, (void *)(p));			\
} while (0)

START_TEST(cxx_operators)
{
	const char nothrow = 0;		/* std::nothrow: an empty struct */
	new_fn nw = sym("_Znwm"), na = sym("_Znam");
	new_nt_fn nwn = sym("_ZnwmRKSt9nothrow_t");
	new_nt_fn nan = sym("_ZnamRKSt9nothrow_t");
	new_al_fn nwa = sym("_ZnwmSt11align_val_t");
	new_al_fn naa = sym("_ZnamSt11align_val_t");
	new_al_nt_fn nwan = sym("_ZnwmSt11align_val_tRKSt9nothrow_t");
	new_al_nt_fn naan = sym("_ZnamSt11align_val_tRKSt9nothrow_t");
	void (*dl)(void *) = sym("_ZdlPv"), (*da)(void *) = sym("_ZdaPv");
	void (*dls)(void *, size_t) = sym("_ZdlPvm");
	void (*das)(void *, size_t) = sym("_ZdaPvm");
	void (*dln)(void *, const void *) = sym("_ZdlPvRKSt9nothrow_t");
	void (*dan)(void *, const void *) = sym("_ZdaPvRKSt9nothrow_t");
	void (*dla)(void *, size_t) = sym("_ZdlPvSt11align_val_t");
	void (*daa)(void *, size_t) = sym("_ZdaPvSt11align_val_t");
	void (*dlsa)(void *, size_t, size_t) = sym("_ZdlPvmSt11align_val_t");
	void (*dasa)(void *, size_t, size_t) = sym("_ZdaPvmSt11align_val_t");
	void (*dlan)(void *, size_t, const void *) =
	    sym("_ZdlPvSt11align_val_tRKSt9nothrow_t");
	void (*daan)(void *, size_t, const void *) =
	    sym("_ZdaPvSt11align_val_tRKSt9nothrow_t");
	const size_t big = 256 * KIB;
	void *p;

	/* Small objects from every new, freed by the matching delete. */
	for (size_t n = 0; n <= 5000; n += 250) {
		p = nw(n);
		ck_assert_ptr_nonnull(p);
		ck_ours(p, n + 1);
		memset(p, 1, n);
		dl(p);
		p = na(n);
		ck_assert_ptr_nonnull(p);
		memset(p, 2, n);
		das(p, n);
		p = nwn(n, &nothrow);
		ck_assert_ptr_nonnull(p);
		memset(p, 3, n);
		dln(p, &nothrow);
		p = nan(n, &nothrow);
		ck_assert_ptr_nonnull(p);
		memset(p, 4, n);
		dan(p, &nothrow);
	}
	for (size_t a = 16; a <= MIB; a *= 4) {
		p = nwa(100, a);
		check_aligned(p, a, 100, "new(align_val_t)");
		dla(p, a);
		p = naa(a + 1, a);
		check_aligned(p, a, a + 1, "new[](align_val_t)");
		dasa(p, a + 1, a);
		p = nwan(3 * a, a, &nothrow);
		check_aligned(p, a, 3 * a, "new(align_val_t, nothrow)");
		dlan(p, a, &nothrow);
		p = naan(1, a, &nothrow);
		check_aligned(p, a, 1, "new[](align_val_t, nothrow)");
		daan(p, a, &nothrow);
	}

	/* Every delete really frees (256 KiB blocks: the heap's bytes in
	 * use go down by that much). */
	p = nw(big);
	ck_assert_ptr_nonnull(p);
	memset(p, 5, big);
	ck_frees(p, dl(p));
	p = na(big);
	ck_frees(p, da(p));
	p = nw(big);
	ck_frees(p, dls(p, big));
	p = na(big);
	ck_frees(p, das(p, big));
	p = nwn(big, &nothrow);
	ck_frees(p, dln(p, &nothrow));
	p = nan(big, &nothrow);
	ck_frees(p, dan(p, &nothrow));
	p = nwa(big, 4096);
	ck_frees(p, dla(p, 4096));
	p = naa(big, 4096);
	ck_frees(p, daa(p, 4096));
	p = nwa(big, 8192);
	ck_frees(p, dlsa(p, big, 8192));
	p = naa(big, 8192);
	ck_frees(p, dasa(p, big, 8192));
	p = nwan(big, 65536, &nothrow);
	ck_frees(p, dlan(p, 65536, &nothrow));
	p = naan(big, 65536, &nothrow);
	ck_frees(p, daan(p, 65536, &nothrow));

	/* Deleting NULL is harmless. */
	dl(NULL);
	dasa(NULL, 0, 64);

	/* The nothrow forms return NULL when memory cannot be had. */
	ck_assert_ptr_null(nwn(huge, &nothrow));
	ck_assert_ptr_null(nan(huge, &nothrow));
	ck_assert_ptr_null(nwan(huge, 64, &nothrow));
	ck_assert_ptr_null(naan(huge, 4096, &nothrow));
}
END_TEST

/* A throwing new that fails ends in std::bad_alloc, never NULL (the
 * program has no handler here: the process aborts). */
START_TEST(cxx_new_failure_throws)
{
	char err[4096];
	int status = run_self("cxx-throw", err, sizeof(err));

	if (WIFEXITED(status) && WEXITSTATUS(status) == T_EXIT_SKIP) {
		fprintf(stderr, "note: no libstdc++ to dlopen; cxx-throw only "
		    "checked to abort\n");
		return;
	}
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	    "status %#x, stderr: %s", status, err);
	ck_assert_msg(strstr(err, "std::bad_alloc") != NULL, "stderr: %s", err);
	ck_assert_msg(strstr(err, "ready") != NULL, "stderr: %s", err);
}
END_TEST

static int
mode_cxx_throw(void)
{
	void *(*nw)(size_t);
	void *p;

	if (dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL) == NULL)
		return T_EXIT_SKIP;
	nw = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "_Znwm");
	if (nw == NULL || !from_preload("_Znwm"))
		return 2;
	fprintf(stderr, "ready\n");
	p = nw(huge);
	fprintf(stderr, "operator new returned %p\n", p);
	return 1;
}

/* ------------------------------------------------------------------ */
/* fork                                                                */
/* ------------------------------------------------------------------ */

struct heap {
	size_t n;
	void *blk[8192];
	size_t len[8192];
};

/* A heap of `total` bytes in blocks of every size (up to 2 MiB). */
static void
heap_make(struct heap *h, size_t total)
{
	size_t sum = 0;

	h->n = 0;
	while (sum < total && h->n < 8192) {
		size_t i = h->n;
		h->len[i] = rnd_size(rnd_global, NULL, 2 * MIB);
		h->blk[i] = malloc(h->len[i]);
		ck_assert_msg(h->blk[i] != NULL, "malloc(%zu): %s", h->len[i],
		    strerror(errno));
		fill(h->blk[i], h->len[i], i, 0);
		sum += h->len[i];
		h->n++;
	}
	ck_assert_uint_ge(sum, total);
}

/* => the index of the first block not as fill()ed with tag, or -1. */
static ssize_t
heap_verify(const struct heap *h, uint64_t tag)
{
	for (size_t i = 0; i < h->n; i++)
		if (verify(h->blk[i], h->len[i], i, tag) != -1)
			return (ssize_t)i;
	return -1;
}

static void
heap_fill(struct heap *h, uint64_t tag)
{
	for (size_t i = 0; i < h->n; i++)
		fill(h->blk[i], h->len[i], i, tag);
}

static void
heap_free(struct heap *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->blk[i]);
	h->n = 0;
}

/*
 * What a fork child checks: the parent's heap, whole and its own, still
 * usrvm's, and paged under a budget of the child's own.
 */
static void
child_heap_checks(struct heap *h, uint64_t tag, bool rewrite)
{
	size_t mem = env_size("USRVM_MEM"), rss;
	void *q, *r;
	ssize_t bad;
	char msg[128];

	/* The heap is registered with the child's own userfaultfd, with
	 * the bytes of the moment of the fork. */
	C(is_ours(h->blk[0], 1));
	if ((bad = heap_verify(h, tag)) != -1) {
		snprintf(msg, sizeof(msg), "block %zd of %zu (%zu bytes) "
		    "differs in the child", bad, h->n, h->len[bad]);
		c_fail(__LINE__, msg);
	}
	/* The child allocates from its heap, and frees and reallocates
	 * the parent's blocks. */
	q = malloc(100000);
	C(q != NULL && is_ours(q, 100000));
	memset(q, 7, 100000);
	r = realloc(h->blk[1], h->len[1] + 5000);
	C(r != NULL && is_ours(r, h->len[1] + 5000));
	C(verify(r, h->len[1], 1, tag) == -1);
	h->blk[1] = r;
	free(q);
	free(h->blk[2]);
	h->blk[2] = malloc(h->len[2]);
	C(h->blk[2] != NULL && is_ours(h->blk[2], h->len[2]));
	C(posix_memalign(&q, 4096, 10000) == 0 && is_ours(q, 10000));
	free(q);
	if (rewrite) {
		/* Four times the budget written: paged out and in. */
		heap_fill(h, tag + 1);
		C(heap_verify(h, tag + 1) == -1);
		rss = heap_rss();
		snprintf(msg, sizeof(msg), "heap resident %zu in the child, "
		    "budget %zu", rss, mem);
		if (rss > mem + mem / 4)
			c_fail(__LINE__, msg);
	}
}

/*
 * The parent's heap is four times the budget (most of it staged or on
 * swap) when it forks.  The child finds every byte, then rewrites and
 * checks its copy; the parent rewrites and checks its own meanwhile, and
 * finds its own bytes again once the child is done.
 */
START_TEST(fork_swapped_heap)
{
	static struct heap h;
	size_t mem = budget(), rss;
	int status;
	pid_t pid;

	heap_make(&h, 4 * mem);
	rss = heap_rss();
	ck_assert_msg(rss <= mem + mem / 4, "heap resident %zu, budget %zu",
	    rss, mem);
	heap_ranges();
	ck_assert_uint_gt(heap_nvma, 0);
	ck_assert(in_heap_ranges(h.blk[0]));

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		child_heap_checks(&h, 0, true);
		_exit(0);
	}
	heap_fill(&h, 2);
	ck_assert_int_eq(heap_verify(&h, 2), -1);
	status = wait_child(pid, 60);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %#x", status);
	ck_assert_int_eq(heap_verify(&h, 2), -1);
	ck_ours(h.blk[0], h.len[0]);
	/* The runtime goes on in the parent: a new block is still ours. */
	{
		void *p = malloc(3 * MIB);
		ck_assert_ptr_nonnull(p);
		ck_ours(p, 3 * MIB);
		fill(p, 3 * MIB, 99, 0);
		ck_assert_int_eq(verify(p, 3 * MIB, 99, 0), -1);
		free(p);
	}
	heap_free(&h);
}
END_TEST

/*
 * Pages the page daemon had staged (moved out to a frame, not yet put
 * back or written) when the process forked are shared with the child
 * from then on.  The parent writes its heap again once the child is
 * gone, the most recently written blocks (the likeliest to be staged)
 * first, and finds its own bytes.
 */
START_TEST(fork_staged_pages)
{
	static struct heap h;
	size_t mem = budget();
	int status;
	pid_t pid;

	heap_make(&h, 4 * mem);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	status = wait_child(pid, 20);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %#x", status);
	for (size_t i = h.n; i-- > 0;)
		fill(h.blk[i], h.len[i], i, 1);
	ck_assert_int_eq(heap_verify(&h, 1), -1);
	heap_free(&h);
}
END_TEST

/*
 * Forks while other threads allocate and free: the allocator's and the
 * runtime's locks are taken around each fork, and the children check
 * the heap made before the threads started.
 */
START_TEST(fork_while_threads_allocate)
{
	static struct heap h;
	static struct worker w[3];
	static atomic_bool stop;
	size_t mem = budget();
	int failed = -1, status = 0;

	heap_make(&h, 2 * mem);
	heap_ranges();
	workers_start(w, 3, &stop, 64 * KIB);
	/* No libcheck assertion until the workers are stopped. */
	for (int i = 0; i < 8 && failed < 0; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			child_heap_checks(&h, 0, i % 3 == 0);
			_exit(0);
		}
		if (pid < 0 || (status = child_wait(pid, 20)) == -1 ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = i;
		usleep(10000);
	}
	workers_stop(w, 3, &stop);
	ck_assert_msg(failed < 0, "fork %d: child status %#x (-1: fork "
	    "failed or the child hung)", failed, status);
	ck_assert_int_eq(heap_verify(&h, 0), -1);
	heap_free(&h);
}
END_TEST

/* fork, posix_spawn and popen then exec: the new program runs (the
 * preloaded one with a runtime of its own). */
START_TEST(fork_exec)
{
	char *argv_true[] = { "true", NULL };
	char err[4096];
	char buf[64] = "";
	int status;
	FILE *fp;
	pid_t pid;
	void *keep = malloc(6 * MIB);	/* something to copy */

	ck_assert_ptr_nonnull(keep);
	memset(keep, 9, 6 * MIB);
	ck_assert_int_eq(posix_spawn(&pid, "/bin/true", NULL, NULL, argv_true,
	    environ), 0);
	status = wait_child(pid, 20);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "posix_spawn /bin/true: status %#x", status);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execv("/bin/true", argv_true);
		_exit(126);
	}
	status = wait_child(pid, 20);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "fork+exec /bin/true: status %#x", status);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *argv_self[] = { self_path, "prog", NULL };
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, STDOUT_FILENO);
		execv(self_path, argv_self);
		_exit(126);
	}
	status = wait_child(pid, 30);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "fork+exec of a preloaded program: status %#x", status);

	status = run_self("prog", err, sizeof(err));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "posix_spawn of a preloaded program: status %#x: %s", status, err);

	fp = popen("echo popen-ok", "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), fp));
	ck_assert_int_eq(pclose(fp), 0);
	ck_assert_str_eq(buf, "popen-ok\n");
	status = system("exit 3");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 3,
	    "system: status %#x", status);
	free(keep);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Running out (USRVM_MEM=4M, USRVM_SWAP_SIZE=8M)                      */
/* ------------------------------------------------------------------ */

#define EX_MAX		(1 << 18)
static void *ex_blk[EX_MAX];	/* not on the heap: it is full */

/*
 * malloc(size) until NULL, each block written.  => the count, the
 * errno of the failure in *err (-1: EX_MAX blocks and still going).
 */
static size_t
ex_fill(size_t size, int *err)
{
	size_t n = 0;

	*err = -1;
	while (n < EX_MAX) {
		errno = 0;
		if ((ex_blk[n] = malloc(size)) == NULL) {
			*err = errno;
			break;
		}
		fill(ex_blk[n], size, n, 3);
		n++;
	}
	return n;
}

static size_t
ex_verify(size_t n, size_t size)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		if (verify(ex_blk[i], size, i, 3) != -1)
			bad++;
	return bad;
}

static void
ex_free(size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ex_blk[i]);
}

/* The largest block had in one piece, to 256 KiB (0: none). */
static size_t
largest_block(void)
{
	for (size_t s = 12 * MIB; s >= 256 * KIB; s -= 256 * KIB) {
		void *p = malloc(s);
		if (p != NULL) {
			memset(p, 1, s);
			free(p);
			return s;
		}
	}
	return 0;
}

/*
 * Blocks of `size` until malloc fails with ENOMEM; what was had is all
 * there, the other allocation calls fail the same way, and once every
 * block is freed the same blocks and a block as large as at the start
 * can be had again.  Nothing is asserted while the heap is full
 * (libcheck allocates).
 */
static void
exhaust(size_t size)
{
	size_t mem = budget(), swap = env_size("USRVM_SWAP_SIZE");
	size_t first, n, n2, bad, u, largest0, largest1;
	size_t big = size > 64 * KIB ? size : 64 * KIB;
	int err, err2, pm_err, e_calloc, e_calloc2, e_memalign, e_realloc, got;
	void *pc, *pc2, *pr, *pm = NULL, *pa, *pn;
	void *(*nwn)(size_t, const void *) = (void *(*)(size_t,
	    const void *))dlsym(RTLD_DEFAULT, "_ZnwmRKSt9nothrow_t");
	const char nothrow = 0;

	ck_assert_uint_gt(swap, 0);
	ck_assert_ptr_nonnull(nwn);
	largest0 = largest_block();
	ck_assert_uint_ge(largest0, mem);

	n = ex_fill(size, &err);
	/*
	 * Full: nothing already had is harmed, and every way to more pages
	 * fails (a request of the same size class, or one of whole pages:
	 * other small classes may still have room in their spans).
	 */
	errno = 0;
	pc = calloc(1, size);
	e_calloc = errno;
	errno = 0;
	pc2 = calloc(1, big);
	e_calloc2 = errno;
	pm_err = posix_memalign(&pm, 64, big);
	errno = 0;
	pa = memalign(4096, big);
	e_memalign = errno;
	errno = 0;
	pr = n > 0 ? realloc(ex_blk[0], 4 * big) : NULL;
	e_realloc = errno;
	if (pr != NULL)
		ex_blk[0] = pr;
	pn = nwn(big, &nothrow);
	bad = ex_verify(n, size);
	u = n > 0 ? malloc_usable_size(ex_blk[0]) : 0;
	got = (pc != NULL) | (pc2 != NULL) << 1 | (pm != NULL) << 2 |
	    (pa != NULL) << 3 | (pn != NULL) << 4 | (pr != NULL) << 5;
	ex_free(n);
	free(pc);
	free(pc2);
	free(pm);
	free(pa);
	free(pn);

	ck_assert_msg(err == ENOMEM, "after %zu blocks of %zu: malloc's errno "
	    "%d", n, size, err);
	/* At least the budget was had, no more than budget + swap. */
	ck_assert_msg(n * size >= mem && n * size <= mem + swap,
	    "%zu blocks of %zu bytes under %zu + %zu", n, size, mem, swap);
	ck_assert_uint_ge(u, size);
	ck_assert_uint_eq(bad, 0);
	/* Had with the heap full (1 calloc, 2 calloc of pages, 4
	 * posix_memalign, 8 memalign, 16 operator new(nothrow), 32 a
	 * realloc that grew): none. */
	ck_assert_int_eq(got, 0);
	ck_assert_int_eq(e_calloc, ENOMEM);
	ck_assert_int_eq(e_calloc2, ENOMEM);
	ck_assert_int_eq(pm_err, ENOMEM);
	ck_assert_int_eq(e_memalign, ENOMEM);
	ck_assert_int_eq(e_realloc, ENOMEM);

	/* Freed: the same again, to the block. */
	first = n;
	n2 = ex_fill(size, &err2);
	bad = ex_verify(n2, size);
	ex_free(n2);
	ck_assert_int_eq(err2, ENOMEM);
	ck_assert_uint_eq(bad, 0);
	ck_assert_msg(n2 >= first, "%zu blocks of %zu at first, %zu after "
	    "freeing them all", first, size, n2);

	/* And one large block, as at the start. */
	largest1 = largest_block();
	ck_assert_msg(largest1 + MIB >= largest0, "largest block %zu at the start, "
	    "%zu once every block of %zu was freed", largest0, largest1,
	    size);
}

START_TEST(exhaust_large_blocks)
{
	exhaust(64 * KIB);
}
END_TEST

START_TEST(exhaust_small_blocks)
{
	exhaust(200);
}
END_TEST

START_TEST(exhaust_huge_request)
{
	void *p;

	errno = 0;
	p = malloc(64 * MIB);	/* more than budget and swap together */
	ck_assert_ptr_null(p);
	ck_assert_int_eq(errno, ENOMEM);
	p = malloc(MIB);
	ck_assert_ptr_nonnull(p);
	ck_ours(p, MIB);
	free(p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The small program (usrvm-run's tests, exec from a preloaded one)    */
/* ------------------------------------------------------------------ */

static int
mode_prog(void)
{
	static void *blk[256];
	size_t len[256];
	char *probe = malloc(1000);

	if (probe != NULL)
		memset(probe, 0, 1000);
	if (probe == NULL || !is_ours(probe, 1000)) {
		fprintf(stderr, "prog: malloc is not usrvm's\n");
		return 3;
	}
	free(probe);
	rng_state = 42;
	for (size_t i = 0; i < 256; i++) {
		len[i] = 64 * KIB + rnd() % (64 * KIB);
		if ((blk[i] = malloc(len[i])) == NULL) {
			perror("prog: malloc");
			return 4;
		}
		fill(blk[i], len[i], i, 0);
	}
	for (size_t i = 0; i < 256; i++) {
		if (verify(blk[i], len[i], i, 0) != -1) {
			fprintf(stderr, "prog: block %zu differs\n", i);
			return 5;
		}
		free(blk[i]);
	}
	printf("preload ok\n");
	return 0;
}

/* The small program ending with _exit, after a vfork child did too. */
static int
mode_prog_exit(void)
{
	int rc, status;
	pid_t pid;

	if ((pid = vfork()) == 0)
		_exit(0);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 6;
	rc = mode_prog();
	fflush(stdout);
	_exit(rc);
}

static int
mode_prog_spawn(void)
{
	char *argv[] = { self_path, "prog", NULL };
	int rc = mode_prog(), status;
	pid_t pid;

	if (rc != 0)
		return rc;
	fflush(stdout);
	if (posix_spawn(&pid, self_path, NULL, NULL, argv, environ) != 0 ||
	    waitpid(pid, &status, 0) != pid)
		return 6;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 7;
}

/* ------------------------------------------------------------------ */

/*
 * Is the preload in place and running?  Not preloaded: a failure (the
 * test is misconfigured); preloaded but off for want of userfaultfd: a
 * skip, as the other tests do.
 */
static void
require_preload(void)
{
	char *p = malloc(100);
	int fd;

	if (p != NULL)
		memset(p, 0, 100);
	if (p != NULL && is_ours(p, 100)) {
		free(p);
		return;
	}
	if (!from_preload("malloc")) {
		fprintf(stderr, "malloc is not libusrvm-preload.so's: run "
		    "with LD_PRELOAD set to it (ctest does)\n");
		exit(1);
	}
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && (errno == EPERM || errno == ENOSYS)) {
		fprintf(stderr, "skip: userfaultfd unavailable (%s)\n",
		    strerror(errno));
		exit(T_EXIT_SKIP);
	}
	fprintf(stderr, "the preload is loaded but its blocks are not in a "
	    "userfaultfd range\n");
	exit(1);
}

static Suite *
preload_suite(void)
{
	Suite *s = suite_create("preload");
	TCase *tc;

	tc = tcase_create("interface");
	tcase_add_checked_fixture(tc, watchdog_start, watchdog_stop);
	tcase_add_test(tc, exports_resolve_to_preload);
	tcase_add_test(tc, malloc_sizes);
	tcase_add_test(tc, calloc_zeroes);
	tcase_add_test(tc, realloc_keeps_contents);
	tcase_add_test(tc, alignments);
	tcase_add_test(tc, posix_memalign_errors);
	tcase_add_test(tc, valloc_pvalloc);
	tcase_add_test(tc, free_keeps_errno);
	tcase_add_test(tc, libc_aliases);
	tcase_add_test(tc, info_and_tuning);
	suite_add_tcase(s, tc);

	tc = tcase_create("heap");
	tcase_add_checked_fixture(tc, watchdog_start, watchdog_stop);
	tcase_add_test(tc, heap_over_budget);
	tcase_add_test(tc, threads_cross_free);
	suite_add_tcase(s, tc);

	tc = tcase_create("cxx");
	tcase_add_checked_fixture(tc, watchdog_start, watchdog_stop);
	tcase_add_test(tc, cxx_operators);
	tcase_add_test(tc, cxx_new_failure_throws);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *
fork_suite(void)
{
	Suite *s = suite_create("preload-fork");
	TCase *tc = tcase_create("fork");

	tcase_add_checked_fixture(tc, watchdog_start, watchdog_stop);
	tcase_add_test(tc, fork_exec);
	tcase_add_test(tc, fork_swapped_heap);
	tcase_add_test(tc, fork_staged_pages);
	tcase_add_test(tc, fork_while_threads_allocate);
	suite_add_tcase(s, tc);
	return s;
}

/* Each case in a process of its own (ctest sets CK_RUN_CASE): what one
 * leaves of the heap would change what the next can have. */
static Suite *
exhaust_suite(void)
{
	Suite *s = suite_create("preload-exhaust");
	TCase *tc;

	tc = tcase_create("large");
	tcase_add_checked_fixture(tc, watchdog_start, watchdog_stop);
	tcase_add_test(tc, exhaust_huge_request);
	tcase_add_test(tc, exhaust_large_blocks);
	suite_add_tcase(s, tc);
	tc = tcase_create("small");
	tcase_add_checked_fixture(tc, watchdog_start, watchdog_stop);
	tcase_add_test(tc, exhaust_small_blocks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	const char *seed = getenv("USRVM_TEST_SEED");
	ssize_t n;
	SRunner *sr;
	int failed;

	n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	if (n <= 0)
		return 1;
	self_path[n] = '\0';
	if (strcmp(mode, "prog") == 0)
		return mode_prog();
	if (strcmp(mode, "prog-spawn") == 0)
		return mode_prog_spawn();
	if (strcmp(mode, "prog-exit") == 0)
		return mode_prog_exit();
	if (strcmp(mode, "cxx-throw") == 0)
		return mode_cxx_throw();
	if (mode[0] != '\0' && strcmp(mode, "fork") != 0 &&
	    strcmp(mode, "exhaust") != 0) {
		fprintf(stderr, "usage: test_preload [fork | exhaust | prog | "
		    "prog-spawn | prog-exit | cxx-throw]\n");
		return 2;
	}
	require_preload();
	cfree = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
	rng_state = seed != NULL ? strtoull(seed, NULL, 0) : 0x5eed;
	if (rng_state == 0)
		rng_state = 1;
	fprintf(stderr, "seed: %llu (set USRVM_TEST_SEED to replay)\n",
	    (unsigned long long)rng_state);

	sr = srunner_create(strcmp(mode, "fork") == 0 ? fork_suite() :
	    strcmp(mode, "exhaust") == 0 ? exhaust_suite() : preload_suite());
	/* One process: a fork child's allocations are glibc's. */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
