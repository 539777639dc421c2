/*
 * first_touch.c: the first-touch case of usrvm-bench.
 *
 * first-touch: fresh anonymous memory written once per page, one 8-byte
 * word at the start of each page, by one thread, in sequential page
 * order and in a random page order (a permutation computed before any
 * timing, from a fixed seed).  This is the cost of a zero-fill fault:
 * the kernel's own, against usrvm's round trip through userfaultfd
 * (amortized by its fault-around window).
 *
 * Per repetition: kernel: mmap fresh memory, MADV_NOHUGEPAGE (both
 * contenders on 4 KiB pages), touch, verify, munmap; usrvm: usrvm_map
 * fresh memory in the default space, touch, verify, usrvm_unmap.  Only
 * the touch loop is timed.  Verification reads every page back: the
 * word written, and zeros in the second and the last word of the page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

enum ft_contender { FT_KERNEL, FT_KERNEL_THP, FT_USRVM, FT_NCONT };

static const char *const ft_cont_name[FT_NCONT] = {
	"kernel", "kernel-thp", "usrvm"
};
static const char ft_cont_tag[FT_NCONT] = { 'k', 't', 'u' };

struct ft_opts {
	size_t size;
	size_t npages;
	unsigned runs;
	bool kernel_thp;
	bool warmup;
	uint64_t seed;
	const char *prog;
};

/*
 * ft_usage: the options of first-touch.
 */
static void
ft_usage(FILE *f)
{
	fprintf(f,
	    "usage: %s first-touch [options]\n"
	    "  Write one word into every page of fresh anonymous memory, in\n"
	    "  sequential and in random page order, one thread: the kernel\n"
	    "  (mmap, MADV_NOHUGEPAGE) against usrvm (usrvm_map), "
	    "interleaved.\n"
	    "options:\n"
	    "  --size SIZE     memory per run, e.g. 512M, 1G (default 1G)\n"
	    "  --runs N        timed repetitions of each contender "
	    "(default %d)\n"
	    "  --kernel-thp    also run the kernel with the system's THP "
	    "setting\n"
	    "                  (no madvise), reported on separate lines\n"
	    "  --no-warmup     skip the untimed warm-up run of each "
	    "contender\n"
	    "  --seed N        seed of the random page order (default "
	    "0x%llx)\n"
	    "  --help          this text\n"
	    "environment: USRVM_FAULT_THREADS, USRVM_RESERVE, "
	    "USRVM_VERBOSE\n",
	    BENCH_PROG, BENCH_DEF_RUNS, (unsigned long long)BENCH_DEF_SEED);
}

/*
 * ft_pattern: the word written into page p by the run tagged `tag`
 * (different in every run, never zero).
 */
static inline uint64_t
ft_pattern(size_t p, uint64_t tag)
{
	return bench_mix64(((uint64_t)p << 20) ^ tag) | 1;
}

/*
 * ft_touch: write the pattern into every page, in page order or in the
 * order of perm[]; the only timed part of a run.
 * => the elapsed time, in seconds.
 */
static double
ft_touch(char *base, size_t npages, const size_t *perm, uint64_t tag)
{
	const size_t ps = bench_pagesize;
	double t0, t1;

	t0 = bench_now();
	if (perm == NULL) {
		for (size_t p = 0; p < npages; p++)
			*(volatile uint64_t *)(base + p * ps) =
			    ft_pattern(p, tag);
	} else {
		for (size_t i = 0; i < npages; i++) {
			size_t p = perm[i];
			*(volatile uint64_t *)(base + p * ps) =
			    ft_pattern(p, tag);
		}
	}
	t1 = bench_now();
	return t1 - t0;
}

/*
 * ft_verify: read every page back.
 * => the number of wrong pages; the first is described on stderr.
 */
static size_t
ft_verify(const struct ft_opts *o, const char *what, const char *base,
    uint64_t tag)
{
	const size_t ps = bench_pagesize, last = ps / 8 - 1;
	size_t bad = 0;

	for (size_t p = 0; p < o->npages; p++) {
		const volatile uint64_t *w =
		    (const volatile uint64_t *)(base + p * ps);
		uint64_t w0 = w[0], w1 = w[1], wl = w[last];

		if (w0 == ft_pattern(p, tag) && w1 == 0 && wl == 0)
			continue;
		if (bad++ == 0)
			fprintf(stderr, "%s: %s: page %zu of %zu (%p) reads "
			    "word0=%#" PRIx64 " (wrote %#" PRIx64 "), "
			    "word1=%#" PRIx64 ", last=%#" PRIx64 " (expected "
			    "zeros)\n", o->prog, what, p, o->npages,
			    (const void *)w, w0, ft_pattern(p, tag), w1, wl);
	}
	if (bad != 0)
		fprintf(stderr, "%s: %s: %zu of %zu pages wrong\n", o->prog,
		    what, bad, o->npages);
	return bad;
}

/*
 * ft_run: one repetition of one contender.  *rate: pages per second of
 * the touch loop; *us: usrvm's statistics of the run (usrvm only).
 * => 0, or 1 (could not map, or the memory read back wrong).
 */
static int
ft_run(const struct ft_opts *o, enum ft_contender c, const size_t *perm,
    uint64_t tag, double *rate, struct bench_ustats *us)
{
	struct usrvm_space *vs = usrvm_default_space();
	struct usrvm_stats s0, s1;
	char what[64];
	double secs;
	char *base;
	size_t bad;

	snprintf(what, sizeof(what), "%s %s", ft_cont_name[c],
	    perm == NULL ? "seq" : "random");
	if (c == FT_USRVM) {
		base = usrvm_map(vs, NULL, o->size, USRVM_PROT_ALL,
		    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0);
		if (base == NULL) {
			fprintf(stderr, "%s: %s: usrvm_map %zu bytes: %s\n",
			    o->prog, what, o->size, strerror(errno));
			return 1;
		}
		bench_ustats_settled(&s0);
		secs = ft_touch(base, o->npages, perm, tag);
	} else {
		base = mmap(NULL, o->size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (base == MAP_FAILED) {
			fprintf(stderr, "%s: %s: mmap %zu bytes: %s\n",
			    o->prog, what, o->size, strerror(errno));
			return 1;
		}
		if (c == FT_KERNEL &&
		    madvise(base, o->size, MADV_NOHUGEPAGE) != 0) {
			fprintf(stderr, "%s: %s: madvise(MADV_NOHUGEPAGE): "
			    "%s\n", o->prog, what, strerror(errno));
			munmap(base, o->size);
			return 1;
		}
		secs = ft_touch(base, o->npages, perm, tag);
	}

	bad = ft_verify(o, what, base, tag);

	if (c == FT_USRVM) {
		int error;

		bench_ustats_settled(&s1);
		bench_ustats_diff(&s0, &s1, us);
		error = usrvm_unmap(vs, base, o->size);
		if (error != 0) {
			fprintf(stderr, "%s: %s: usrvm_unmap: %s\n", o->prog,
			    what, strerror(-error));
			return 1;
		}
	} else {
		munmap(base, o->size);
	}
	*rate = secs > 0 ? (double)o->npages / secs : 0;
	return bad != 0;
}

/*
 * ft_report: the result lines of one order: the kernel against usrvm
 * (and the kernel with THP against usrvm, if run), then usrvm's
 * statistics of its last run.
 */
static void
ft_report(const struct ft_opts *o, const char *order,
    double rates[FT_NCONT][BENCH_MAX_RUNS], const struct bench_ustats *us)
{
	double mu = bench_median(rates[FT_USRVM], o->runs);
	char kl[16 * BENCH_MAX_RUNS], ul[16 * BENCH_MAX_RUNS], thp[32];

	bench_list(rates[FT_USRVM], o->runs, ul, sizeof(ul));
	for (int c = FT_KERNEL; c <= FT_KERNEL_THP; c++) {
		double mk = bench_median(rates[c], o->runs);

		if (c == FT_KERNEL_THP && !o->kernel_thp)
			continue;
		bench_list(rates[c], o->runs, kl, sizeof(kl));
		printf("first-touch %-6s %-6s %9.0f pages/s  usrvm %9.0f "
		    "pages/s  ratio=%.2f  (median of %u; runs: %c=%s u=%s%s%s)"
		    "\n", order, ft_cont_name[c], mk, mu, mk > 0 ? mu / mk : 0,
		    o->runs, ft_cont_tag[c], kl, ul,
		    c == FT_KERNEL_THP ? "; THP " : "",
		    c == FT_KERNEL_THP ? bench_thp_setting(thp, sizeof(thp)) :
		    "");
	}
	printf("first-touch %-6s usrvm-stats (last run): faults=%" PRIu64
	    " zero=%" PRIu64 " dup=%" PRIu64 " upper=%" PRIu64 " wp=%" PRIu64
	    " errors=%" PRIu64 " filled=%" PRIu64 " pages/fault=%.1f "
	    "fault_lat p50<=%" PRIu64 "ns p99<=%" PRIu64 "ns\n", order,
	    us->faults, us->zero, us->dup, us->upper, us->wp, us->errors,
	    us->filled, us->faults ? (double)o->npages / us->faults : 0.0,
	    us->lat_p50_ns, us->lat_p99_ns);
}

/*
 * ft_perm: a random permutation of [0, n) (Fisher-Yates, splitmix64).
 */
static void
ft_perm(size_t *perm, size_t n, uint64_t seed)
{
	uint64_t s = seed;

	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n - 1; i > 0 && n > 1; i--) {
		size_t j = (size_t)(bench_mix64(s++) % (i + 1));
		size_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
}

/*
 * ft_main: the first-touch case.  Warm-up (untimed), then for each order
 * the interleaved repetitions and their report.
 * => 0, 1 (a run failed) or 2 (usage).
 */
int
ft_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size",	required_argument, NULL, 's' },
		{ "runs",	required_argument, NULL, 'r' },
		{ "kernel-thp",	no_argument,	   NULL, 'T' },
		{ "no-warmup",	no_argument,	   NULL, 'W' },
		{ "seed",	required_argument, NULL, 'S' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ NULL,		0,		   NULL, 0 }
	};
	static double rates[FT_NCONT][BENCH_MAX_RUNS];
	static const char *const orders[] = { "seq", "random" };
	struct ft_opts o = {
		.size = (size_t)1 << 30, .runs = BENCH_DEF_RUNS,
		.kernel_thp = false, .warmup = true, .seed = BENCH_DEF_SEED,
		.prog = argv[0],
	};
	struct usrvm_config cfg;
	struct bench_ustats us;
	unsigned long long v;
	char sz[32], extra[256];
	long physpages;
	uint64_t tag = 0;
	size_t *perm;
	double dummy;
	int ch, error;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (bench_opt_size(o.prog, "--size", optarg,
			    &o.size) != 0)
				return 2;
			break;
		case 'r':
			if (bench_opt_runs(o.prog, "--runs", optarg,
			    &o.runs) != 0)
				return 2;
			break;
		case 'T':
			o.kernel_thp = true;
			break;
		case 'W':
			o.warmup = false;
			break;
		case 'S':
			if (bench_opt_uint(o.prog, "--seed", optarg, 0,
			    UINT64_MAX, &v) != 0)
				return 2;
			o.seed = v;
			break;
		case 'h':
			ft_usage(stdout);
			return 0;
		default:
			ft_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", o.prog,
		    argv[optind]);
		ft_usage(stderr);
		return 2;
	}
	o.npages = o.size / bench_pagesize;
	physpages = sysconf(_SC_PHYS_PAGES);
	if (physpages > 0 && o.npages > (size_t)physpages) {
		fprintf(stderr, "%s: --size %s: larger than physical memory "
		    "(%zu MiB); a run would swap or be killed\n", o.prog,
		    bench_size_str(o.size, sz, sizeof(sz)),
		    (size_t)physpages * bench_pagesize >> 20);
		return 2;
	}

	if (usrvm_config_load(&cfg) != 0)
		return 2;
	if ((error = bench_usrvm_start(o.prog, &cfg)) != 0)
		return error;
	if (o.size > usrvm_space_size(usrvm_default_space())) {
		fprintf(stderr, "%s: --size %s: larger than the default space "
		    "(%zu MiB; set USRVM_RESERVE)\n", o.prog,
		    bench_size_str(o.size, sz, sizeof(sz)),
		    usrvm_space_size(usrvm_default_space()) >> 20);
		usrvm_shutdown();
		return 2;
	}
	if ((perm = malloc(o.npages * sizeof(*perm))) == NULL) {
		fprintf(stderr, "%s: no memory for the page order\n", o.prog);
		usrvm_shutdown();
		return 1;
	}
	ft_perm(perm, o.npages, o.seed);

	snprintf(extra, sizeof(extra), "size=%s (%zu pages of %zu B) "
	    "runs=%u order=seq,random seed=%#llx warmup=%s",
	    bench_size_str(o.size, sz, sizeof(sz)), o.npages, bench_pagesize,
	    o.runs, (unsigned long long)o.seed,
	    o.warmup ? "1-untimed-run-each" : "none");
	bench_header("first-touch", &cfg, extra);
	printf("first-touch contenders: kernel=mmap(PRIVATE|ANONYMOUS|"
	    "NORESERVE)+MADV_NOHUGEPAGE%s usrvm=usrvm_map(PRIVATE|ANON) in "
	    "the default space; timed: the touch loop only, one thread; "
	    "runs interleaved %s\n",
	    o.kernel_thp ? " kernel-thp=mmap with the system's THP setting"
	    : "", o.kernel_thp ? "k,t,u,k,t,u,..." : "k,u,k,u,...");
	fflush(stdout);

	/* The first touch of fresh guest memory can be slow: warm both. */
	if (o.warmup) {
		for (int c = 0; c < FT_NCONT; c++) {
			if (c == FT_KERNEL_THP && !o.kernel_thp)
				continue;
			if (ft_run(&o, c, NULL, ++tag, &dummy, &us) != 0)
				goto fail;
		}
	}

	for (unsigned k = 0; k < 2; k++) {
		const size_t *order = k == 0 ? NULL : perm;

		memset(&us, 0, sizeof(us));
		for (unsigned r = 0; r < o.runs; r++) {
			for (int c = 0; c < FT_NCONT; c++) {
				if (c == FT_KERNEL_THP && !o.kernel_thp)
					continue;
				if (ft_run(&o, c, order, ++tag, &rates[c][r],
				    &us) != 0)
					goto fail;
			}
		}
		ft_report(&o, orders[k], rates, &us);
		fflush(stdout);
	}
	free(perm);
	usrvm_shutdown();
	return 0;

fail:
	fflush(stdout);
	fprintf(stderr, "%s: FAILED\n", o.prog);
	free(perm);
	usrvm_shutdown();
	return 1;
}

