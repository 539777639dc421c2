/*
 * fork.c: the "fork" case of usrvm-bench: copy-on-write between spaces.
 *
 * Three parts, each repeated --runs times and reported by its median:
 *
 *   generations  a chain of --generations usrvm_forks of a 4 MiB space
 *                whose pages all hold data; each generation writes one
 *                page.  At generations 1, 10, 100, 1000 (up to the
 *                chain's length), the time of a read fault and of a write
 *                fault on pages the generation has not touched (written
 *                every other page, so that each write is a fault of its
 *                own: a write stream is promoted a window at a time).  UVM's
 *                claim against BSD VM's shadow-object chains is that this
 *                stays flat: the ratio to generation 1 is printed.
 *   fork-cost    usrvm_fork of a space holding a 1 GiB mapping (--size)
 *                with nothing, 1/16 and all of it resident, next to the
 *                kernel's fork(2) of this process with a plain mapping of
 *                the same size and residency (a raw clone: no atfork
 *                handlers, the child only waits and exits).
 *   first-write  after the fork, one word written into each page of the
 *                parent's mapping (each write copies its page): time per
 *                page, for usrvm, for the kernel after fork(2), and for a
 *                plain memcpy of a page.
 *   sharing      two spaces reading the same pages in turn, page by
 *                page, FK_SHARE_ROUNDS times: through views of one memfd
 *                (shared anonymous memory, SHARE: the way objects' pages
 *                are shared, files' included), and as one page that moves
 *                to whichever space reads it (private memory, COPY: what
 *                keeping private copies coherent by moving would cost).
 *                Time per read; with the memfd, every other read is a
 *                write seen by the other space at once.
 *
 * Pages are checked after every timed part; a wrong byte fails the run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define FK_CHAIN_PAGES	1024		/* 4 MiB per generation */
#define FK_GEN_WRITES	16		/* pages the generations write */
#define FK_SAMPLES	64		/* faults timed per kind and point */
#define FK_NPOINTS	4
#define FK_SHARE_PAGES	1024		/* 4 MiB read in turn */
#define FK_SHARE_ROUNDS	4

static const unsigned fk_points[FK_NPOINTS] = { 1, 10, 100, 1000 };
_Static_assert(FK_GEN_WRITES + FK_NPOINTS * 3 * FK_SAMPLES <= FK_CHAIN_PAGES,
    "the points' pages fit the chain's mapping");

struct fk_opts {
	const char *prog;
	size_t size;
	unsigned runs, generations;
};

static void
fk_usage(FILE *f)
{
	fprintf(f, "usage: %s fork [options]\n"
	    "options:\n"
	    "  --size SIZE         the mapping forked in fork-cost and "
	    "first-write\n"
	    "                      (default 1G)\n"
	    "  --generations N     length of the fork chain (default 1000)\n"
	    "  --runs N            repetitions (default %d)\n"
	    "  --help              this text\n"
	    "environment: USRVM_FAULT_THREADS, USRVM_VERBOSE (the runtime's "
	    "statistics at the end); the budget is 2 x SIZE, "
	    "swap 4 x SIZE\n", BENCH_PROG, BENCH_DEF_RUNS);
}

static inline uint64_t
fk_word(size_t page, uint64_t tag)
{
	return bench_mix64(((uint64_t)page << 24) ^ tag) | 1;
}

static char *
fk_at(struct usrvm_space *vs, size_t off)
{
	return (char *)usrvm_space_base(vs) + off;
}

/* Write the tag's word into pages [0, n). */
static void
fk_fill(char *base, size_t n, uint64_t tag)
{
	for (size_t p = 0; p < n; p++)
		*(volatile uint64_t *)(base + p * bench_pagesize) =
		    fk_word(p, tag);
}

/* ------------------------------------------------------------------ */
/* generations                                                         */
/* ------------------------------------------------------------------ */

/*
 * One chain: read[i], write[i] = mean ns per fault at fk_points[i].
 * => 0, or -1 (a fork failed or a page read back wrong).
 */
static int
fk_chain(const struct fk_opts *o, double *rd, double *wr, unsigned *npts)
{
	struct usrvm_space **gen;
	const size_t ps = bench_pagesize;
	size_t off;
	char *b;
	int ret = 0;
	unsigned pt = 0, g;

	if ((gen = calloc(o->generations + 1, sizeof(*gen))) == NULL)
		return -1;
	if ((gen[0] = usrvm_space_create(64 << 20)) == NULL ||
	    (b = usrvm_map(gen[0], NULL, FK_CHAIN_PAGES * ps, USRVM_PROT_ALL,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0)) == NULL) {
		fprintf(stderr, "%s: space: %s\n", o->prog, strerror(errno));
		free(gen);
		return -1;
	}
	off = (size_t)(b - fk_at(gen[0], 0));
	fk_fill(b, FK_CHAIN_PAGES, 0);

	for (g = 1; g <= o->generations && ret == 0; g++) {
		if ((gen[g] = usrvm_fork(gen[g - 1])) == NULL) {
			fprintf(stderr, "%s: usrvm_fork (generation %u): %s\n",
			    o->prog, g, strerror(errno));
			ret = -1;
			break;
		}
		b = fk_at(gen[g], off);
		/* The generation's own write: it copies the amap. */
		*(volatile uint64_t *)(b + (g % FK_GEN_WRITES) * ps) =
		    fk_word(g % FK_GEN_WRITES, g);
		if (pt < FK_NPOINTS && fk_points[pt] == g) {
			size_t first = FK_GEN_WRITES + pt * 3 * FK_SAMPLES;
			double t0, t1, t2;
			uint64_t sum = 0;

			t0 = bench_now();
			for (size_t j = 0; j < FK_SAMPLES; j++)
				sum += *(volatile uint64_t *)(b +
				    (first + j) * ps);
			t1 = bench_now();
			for (size_t j = 0; j < FK_SAMPLES; j++)
				*(volatile uint64_t *)(b + (first + FK_SAMPLES +
				    2 * j) * ps) = g;
			t2 = bench_now();
			for (size_t j = 0; j < FK_SAMPLES; j++)
				sum -= fk_word(first + j, 0);
			if (sum != 0) {
				fprintf(stderr, "%s: generation %u read wrong "
				    "bytes\n", o->prog, g);
				ret = -1;
			}
			rd[pt] = (t1 - t0) * 1e9 / FK_SAMPLES;
			wr[pt] = (t2 - t1) * 1e9 / FK_SAMPLES;
			pt++;
		}
	}
	/* Generation 0 still holds what it wrote. */
	b = fk_at(gen[0], off);
	for (size_t p = 0; p < FK_CHAIN_PAGES && ret == 0; p++)
		if (*(volatile uint64_t *)(b + p * ps) != fk_word(p, 0)) {
			fprintf(stderr, "%s: generation 0 page %zu changed\n",
			    o->prog, p);
			ret = -1;
		}
	for (unsigned i = 0; i < g && i <= o->generations; i++)
		if (gen[i] != NULL)
			(void)usrvm_space_destroy(gen[i]);
	free(gen);
	*npts = pt;
	return ret;
}

/* ------------------------------------------------------------------ */
/* fork cost and first writes                                          */
/* ------------------------------------------------------------------ */

/* After a fork: write into pages [0, n) of the parent.  => s per page. */
static double
fk_first_writes(char *base, size_t n)
{
	double t0 = bench_now();

	fk_fill(base, n, 2);
	return (bench_now() - t0) / (double)n;
}

/*
 * Fork a space with [0, resident) of its mapping written: the fork's
 * time in *forkt; with first_write, also the time per page of writing
 * one word into each of the parent's written pages afterwards.
 */
static int
fk_fork_once(const struct fk_opts *o, size_t resident, double *forkt,
    double *writet)
{
	const size_t ps = bench_pagesize, n = resident / ps;
	struct usrvm_space *p, *c;
	double t0, t1;
	char *b;
	int ret = 0;

	if ((p = usrvm_space_create(o->size + (64 << 20))) == NULL ||
	    (b = usrvm_map(p, NULL, o->size, USRVM_PROT_ALL,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0)) == NULL) {
		fprintf(stderr, "%s: space: %s\n", o->prog, strerror(errno));
		if (p != NULL)
			(void)usrvm_space_destroy(p);
		return -1;
	}
	fk_fill(b, n, 1);
	t0 = bench_now();
	c = usrvm_fork(p);
	t1 = bench_now();
	if (c == NULL) {
		fprintf(stderr, "%s: usrvm_fork: %s\n", o->prog,
		    strerror(errno));
		(void)usrvm_space_destroy(p);
		return -1;
	}
	*forkt = t1 - t0;
	if (writet != NULL && n > 0) {
		*writet = fk_first_writes(b, n);
		/* The child still sees the old bytes. */
		for (size_t i = 0; i < n && ret == 0; i++)
			if (*(volatile uint64_t *)(fk_at(c, (size_t)(b -
			    fk_at(p, 0))) + i * ps) != fk_word(i, 1)) {
				fprintf(stderr, "%s: the child's page %zu "
				    "changed\n", o->prog, i);
				ret = -1;
			}
	}
	(void)usrvm_space_destroy(c);
	(void)usrvm_space_destroy(p);
	return ret;
}

/*
 * The kernel's fork(2) of this process with a plain private mapping of
 * o->size, [0, resident) of it written; as fk_fork_once.
 */
static int
fk_kernel_once(const struct fk_opts *o, size_t resident, double *forkt,
    double *writet)
{
	const size_t ps = bench_pagesize, n = resident / ps;
	int pfd[2], status;
	double t0, t1;
	pid_t pid;
	char *b, c = 0;

	b = mmap(NULL, o->size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED || pipe(pfd) != 0) {
		fprintf(stderr, "%s: mmap/pipe: %s\n", o->prog,
		    strerror(errno));
		return -1;
	}
	fk_fill(b, n, 1);
	t0 = bench_now();
	pid = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
	t1 = bench_now();
	if (pid == 0) {
		/* Only system calls here: no lock of the parent's threads. */
		(void)!read(pfd[0], &c, 1);
		_exit(0);
	}
	if (pid < 0) {
		fprintf(stderr, "%s: clone: %s\n", o->prog, strerror(errno));
		return -1;
	}
	*forkt = t1 - t0;
	if (writet != NULL && n > 0)
		*writet = fk_first_writes(b, n);
	(void)!write(pfd[1], &c, 1);
	(void)waitpid(pid, &status, 0);
	close(pfd[0]);
	close(pfd[1]);
	munmap(b, o->size);
	return 0;
}

/*
 * Two spaces read [0, FK_SHARE_PAGES) in turn, page by page: ns per
 * read.  With write, the first space writes each page before the second
 * reads it (shared memory only) and the second checks it saw the write.
 * => -1 if a page read back wrong.
 */
static int
fk_share_once(const struct fk_opts *o, int flags, bool write, double *t)
{
	const size_t ps = bench_pagesize, n = FK_SHARE_PAGES;
	struct usrvm_space *p, *c = NULL;
	uint64_t sum = 0;
	double t0;
	char *a, *b;
	int ret = 0;

	if ((p = usrvm_space_create((size_t)64 << 20)) == NULL ||
	    (a = usrvm_map(p, NULL, n * ps, USRVM_PROT_ALL, flags |
	    USRVM_MAP_ANON, -1, 0)) == NULL ||
	    (fk_fill(a, n, 1), c = usrvm_fork(p)) == NULL) {
		fprintf(stderr, "%s: sharing: %s\n", o->prog, strerror(errno));
		if (p != NULL)
			(void)usrvm_space_destroy(p);
		return -1;
	}
	b = fk_at(c, (size_t)(a - fk_at(p, 0)));
	for (size_t i = 0; i < n; i++)	/* every page in place once */
		sum += *(volatile uint64_t *)(b + i * ps);
	t0 = bench_now();
	for (unsigned r = 0; r < FK_SHARE_ROUNDS; r++)
		for (size_t i = 0; i < n; i++) {
			volatile uint64_t *x = (volatile uint64_t *)(a + i * ps);
			volatile uint64_t *y = (volatile uint64_t *)(b + i * ps);
			uint64_t v = write ? fk_word(i, 10 + r) : fk_word(i, 1);
			if (write)
				*x = v;
			else
				sum += *x;
			if (*y != v) {
				fprintf(stderr, "%s: sharing: page %zu read "
				    "%#llx\n", o->prog, i,
				    (unsigned long long)*y);
				ret = -1;
			}
		}
	*t = (bench_now() - t0) / (double)(2 * FK_SHARE_ROUNDS * n);
	__asm__ volatile("" : : "r"(sum));
	(void)usrvm_space_destroy(c);
	(void)usrvm_space_destroy(p);
	return ret;
}

/* memcpy of as many pages as the first-write part writes, per page. */
static double
fk_memcpy(size_t bytes)
{
	char *src = malloc(bytes), *dst = malloc(bytes);
	double t0, t1;

	if (src == NULL || dst == NULL) {
		free(src);
		free(dst);
		return 0;
	}
	memset(src, 1, bytes);
	memset(dst, 2, bytes);
	t0 = bench_now();
	for (size_t off = 0; off < bytes; off += bench_pagesize)
		memcpy(dst + off, src + off, bench_pagesize);
	t1 = bench_now();
	__asm__ volatile("" : : "r"(dst) : "memory");
	free(src);
	free(dst);
	return (t1 - t0) / (double)(bytes / bench_pagesize);
}

int
fk_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size",	 required_argument, NULL, 's' },
		{ "generations", required_argument, NULL, 'g' },
		{ "runs",	 required_argument, NULL, 'r' },
		{ "help",	 no_argument,	    NULL, 'h' },
		{ NULL,		 0,		    NULL, 0 }
	};
	static double rd[FK_NPOINTS][BENCH_MAX_RUNS];
	static double wr[FK_NPOINTS][BENCH_MAX_RUNS];
	static double ft[3][BENCH_MAX_RUNS], fw[BENCH_MAX_RUNS];
	static double kt[3][BENCH_MAX_RUNS], kw[BENCH_MAX_RUNS];
	static double mc[BENCH_MAX_RUNS];
	static double sh[3][BENCH_MAX_RUNS];	/* memfd read, write; moved */
	struct fk_opts o = {
		.prog = argv[0], .size = (size_t)1 << 30,
		.runs = BENCH_DEF_RUNS, .generations = 1000,
	};
	struct usrvm_config cfg;
	unsigned long long v;
	unsigned npts = 0;
	size_t res[3];
	char buf[256], sz[32];
	int ch, error;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (bench_opt_size(o.prog, "--size", optarg,
			    &o.size) != 0)
				return 2;
			break;
		case 'g':
			if (bench_opt_uint(o.prog, "--generations", optarg, 1,
			    10000, &v) != 0)
				return 2;
			o.generations = (unsigned)v;
			break;
		case 'r':
			if (bench_opt_runs(o.prog, "--runs", optarg,
			    &o.runs) != 0)
				return 2;
			break;
		case 'h':
			fk_usage(stdout);
			return 0;
		default:
			fk_usage(stderr);
			return 2;
		}
	}
	if (optind != argc || o.size < ((size_t)16 << 20)) {
		fk_usage(stderr);
		return 2;
	}

	if ((error = usrvm_config_load(&cfg)) != 0) {
		fprintf(stderr, "%s: %s\n", o.prog, strerror(-error));
		return 2;
	}
	cfg.mem_limit = 2 * o.size;
	cfg.swap_size = 4 * o.size + (size_t)o.generations * 2 * (1 << 20);
	if ((error = bench_usrvm_start(o.prog, &cfg)) != 0)
		return error;
	snprintf(buf, sizeof(buf), "size=%s generations=%u runs=%u",
	    bench_size_str(o.size, sz, sizeof(sz)), o.generations, o.runs);
	bench_header("fork", &cfg, buf);

	res[0] = 0;
	res[1] = o.size / 16;
	res[2] = o.size;
	for (unsigned r = 0; r < o.runs; r++) {
		double rdr[FK_NPOINTS], wrr[FK_NPOINTS];

		if (fk_chain(&o, rdr, wrr, &npts) != 0)
			return 1;
		for (unsigned i = 0; i < npts; i++) {
			rd[i][r] = rdr[i];
			wr[i][r] = wrr[i];
		}
		for (unsigned i = 0; i < 3; i++)
			if (fk_fork_once(&o, res[i], &ft[i][r],
			    i == 2 ? &fw[r] : NULL) != 0 ||
			    fk_kernel_once(&o, res[i], &kt[i][r],
			    i == 2 ? &kw[r] : NULL) != 0)
				return 1;
		mc[r] = fk_memcpy(o.size);
		if (fk_share_once(&o, USRVM_MAP_SHARED, false, &sh[0][r]) != 0 ||
		    fk_share_once(&o, USRVM_MAP_SHARED, true, &sh[1][r]) != 0 ||
		    fk_share_once(&o, USRVM_MAP_PRIVATE, false, &sh[2][r]) != 0)
			return 1;
	}

	for (unsigned i = 0; i < npts; i++) {
		double r = bench_median(rd[i], o.runs);
		double w = bench_median(wr[i], o.runs);
		printf("fork generation %u: read fault %.0f ns (%.2fx "
		    "generation 1), write fault %.0f ns (%.2fx)\n",
		    fk_points[i], r, r / bench_median(rd[0], o.runs), w,
		    w / bench_median(wr[0], o.runs));
	}
	for (unsigned i = 0; i < 3; i++)
		printf("fork fork-cost resident=%s: usrvm_fork %.1f us (%.2fx "
		    "with nothing resident), kernel fork(2) %.1f us (%.2fx)\n",
		    bench_size_str(res[i], sz, sizeof(sz)),
		    bench_median(ft[i], o.runs) * 1e6,
		    bench_median(ft[i], o.runs) / bench_median(ft[0], o.runs),
		    bench_median(kt[i], o.runs) * 1e6,
		    bench_median(kt[i], o.runs) / bench_median(kt[0], o.runs));
	printf("fork first-write: usrvm %.0f ns per page, kernel after "
	    "fork(2) %.0f ns, memcpy of a page %.0f ns; usrvm/kernel %.2fx, "
	    "usrvm/memcpy %.2fx\n", bench_median(fw, o.runs) * 1e9,
	    bench_median(kw, o.runs) * 1e9, bench_median(mc, o.runs) * 1e9,
	    bench_median(fw, o.runs) / bench_median(kw, o.runs),
	    bench_median(fw, o.runs) / bench_median(mc, o.runs));
	printf("fork sharing: two spaces reading %d pages in turn: views of "
	    "one memfd %.0f ns per read (%.0f ns with every other one a "
	    "write), one page moved to the reader %.0f ns per read (%.1fx)\n",
	    FK_SHARE_PAGES, bench_median(sh[0], o.runs) * 1e9,
	    bench_median(sh[1], o.runs) * 1e9,
	    bench_median(sh[2], o.runs) * 1e9,
	    bench_median(sh[2], o.runs) / bench_median(sh[0], o.runs));
	if (getenv("USRVM_VERBOSE") != NULL)
		usrvm_stats_print(2);
	usrvm_shutdown();
	return 0;
}
