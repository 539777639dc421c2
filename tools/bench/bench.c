/*
 * usrvm-bench: measure usrvm against the kernel's own virtual memory.
 *
 *	usrvm-bench CASE [options]
 *	usrvm-bench --help		(lists the cases)
 *	usrvm-bench CASE --help		(the case's options)
 *
 * Every case runs one workload on two contenders in the same run: the
 * kernel (plain mmap) and usrvm (usrvm_map in the default space), in the
 * bench's own process or, where a contender needs fresh state or a
 * memory limit, in a child process per repetition.  Repetitions of the
 * two are interleaved (k,u,k,u,...) so that noise from the machine hits
 * both, and each is reported by its median, with the ratio usrvm/kernel
 * (above 1: usrvm is faster).  The malloc case has four contenders, the
 * allocators under unmodified programs (glibc's malloc is the baseline),
 * and reports times: its ratio is time / glibc's (below 1: faster).
 *
 * Output lines start with "CASE ORDER" (or "CASE PHASE") and carry
 * key=value or "N pages/s" figures, so they can be grepped and compared
 * across runs.
 *
 * Exit status: 0 success, 1 a run failed (a contender could not map, or
 * the memory did not read back what was written), 2 usage.
 *
 * This file holds main, the table of cases (bench_cases[], at the end)
 * and the utilities the cases share (bench.h); each case has its own
 * file(s).  A case is a name, a one-line description, and a main function
 * taking the arguments after the case name (argv[0] is "usrvm-bench
 * CASE", for getopt's messages).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

size_t bench_pagesize;

/* ------------------------------------------------------------------ */
/* utilities                                                           */
/* ------------------------------------------------------------------ */

/*
 * bench_now: a monotonic clock, in seconds.
 */
double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * bench_parse_size: a size as usrvm_parse_size takes it ("4096", "64K",
 * "256M", "1G", "1T", binary units, an optional "iB" or "B") that is a
 * nonzero multiple of the page size.
 * => 0, or -1 with *why set to a message.
 */
static int
bench_parse_size(const char *s, size_t *out, const char **why)
{
	size_t v;

	if (usrvm_parse_size(s, &v) != 0) {
		*why = "expected digits with an optional K, M, G or T suffix "
		    "(binary units), e.g. 1G or 512M";
		return -1;
	}
	if (v == 0) {
		*why = "must not be zero";
		return -1;
	}
	if (v % bench_pagesize != 0) {
		*why = "must be a multiple of the page size";
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * bench_parse_uint: a decimal (or 0x hexadecimal) number in [min, max].
 * => 0 or -1.
 */
static int
bench_parse_uint(const char *s, unsigned long long min,
    unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * bench_opt_size: the size argument of option `opt`, as bench_parse_size
 * takes it.
 * => 0, or -1 (said on stderr).
 */
int
bench_opt_size(const char *prog, const char *opt, const char *arg,
    size_t *out)
{
	const char *why;

	if (bench_parse_size(arg, out, &why) != 0) {
		fprintf(stderr, "%s: %s '%s': %s\n", prog, opt, arg, why);
		return -1;
	}
	return 0;
}

/*
 * bench_opt_uint: the numeric argument of option `opt`, in [min, max]
 * (max UINT64_MAX: any number).
 * => 0, or -1 (said on stderr).
 */
int
bench_opt_uint(const char *prog, const char *opt, const char *arg,
    unsigned long long min, unsigned long long max, unsigned long long *out)
{
	if (bench_parse_uint(arg, min, max, out) == 0)
		return 0;
	if (max == UINT64_MAX)
		fprintf(stderr, "%s: %s '%s': expected a number\n", prog, opt,
		    arg);
	else
		fprintf(stderr, "%s: %s '%s': expected a number from %llu to "
		    "%llu\n", prog, opt, arg, min, max);
	return -1;
}

/* bench_opt_runs: a count of repetitions, 1 to BENCH_MAX_RUNS. */
int
bench_opt_runs(const char *prog, const char *opt, const char *arg,
    unsigned *out)
{
	unsigned long long v;

	if (bench_opt_uint(prog, opt, arg, 1, BENCH_MAX_RUNS, &v) != 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/*
 * bench_size_str: a size as the shortest exact binary unit ("1G").
 */
const char *
bench_size_str(size_t len, char *buf, size_t buflen)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u < 3 && len != 0 && len % 1024 == 0) {
		len /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, buflen, "%zu", len);
	else
		snprintf(buf, buflen, "%zu%c", len, units[u]);
	return buf;
}

/*
 * bench_cmp_double: qsort comparator of doubles, ascending.
 */
static int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * bench_median: the median of v[0..n-1] (the mean of the two middle
 * values when n is even).  v is left as it was.
 */
double
bench_median(const double *v, unsigned n)
{
	double s[BENCH_MAX_RUNS];

	if (n == 0)
		return 0;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), bench_cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/*
 * bench_list: "[v0,v1,...]" of rates rounded to whole numbers.
 */
const char *
bench_list(const double *v, unsigned n, char *buf, size_t buflen)
{
	size_t off = 0;

	off += snprintf(buf + off, buflen - off, "[");
	for (unsigned i = 0; i < n && off < buflen; i++)
		off += snprintf(buf + off, buflen - off, "%s%.0f",
		    i ? "," : "", v[i]);
	if (off < buflen)
		snprintf(buf + off, buflen - off, "]");
	return buf;
}

/*
 * bench_thp_setting: the system's transparent huge page mode, the
 * bracketed word of /sys/kernel/mm/transparent_hugepage/enabled.
 */
const char *
bench_thp_setting(char *buf, size_t buflen)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char line[128], *l, *r;

	snprintf(buf, buflen, "unknown");
	if (f == NULL)
		return buf;
	if (fgets(line, sizeof(line), f) != NULL &&
	    (l = strchr(line, '[')) != NULL && (r = strchr(l, ']')) != NULL) {
		*r = '\0';
		snprintf(buf, buflen, "%s", l + 1);
	}
	fclose(f);
	return buf;
}

/*
 * bench_header: the line every case starts its output with: what was
 * run, where, when, and with how many fault threads.
 */
void
bench_header(const char *cname, const struct usrvm_config *cfg,
    const char *extra)
{
	const char *env = getenv("USRVM_FAULT_THREADS");
	char date[64], threads[128];
	struct utsname un;
	time_t t = time(NULL);
	struct tm tm;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (uname(&un) != 0)
		snprintf(un.release, sizeof(un.release), "unknown");
	if (cfg->fault_threads == 0)
		snprintf(threads, sizeof(threads), "%ld (%s: one per online "
		    "core, at least 4 with a memory budget)", ncpu > 0 ? ncpu : 1,
		    env != NULL ? "USRVM_FAULT_THREADS=0" : "default");
	else
		snprintf(threads, sizeof(threads), "%u (USRVM_FAULT_THREADS)",
		    cfg->fault_threads);
	printf("%s %s: %s fault_threads=%s cpus=%ld linux=%s date=%s\n",
	    BENCH_PROG, cname, extra, threads, ncpu, un.release, date);
}

/*
 * bench_config_for: the configuration (usrvm_config_load: the defaults
 * and the USRVM_* variables) of a case that maps `size` bytes in the
 * default space.
 * => 0, or 2 (a bad variable, or a space too small for size; said).
 */
int
bench_config_for(const char *prog, size_t size, struct usrvm_config *cfg)
{
	char sz[32];

	if (usrvm_config_load(cfg) != 0)
		return 2;
	if (size > cfg->default_reserve) {
		fprintf(stderr, "%s: --size %s: larger than the default space "
		    "(%zu MiB; set USRVM_RESERVE)\n", prog,
		    bench_size_str(size, sz, sizeof(sz)),
		    cfg->default_reserve >> 20);
		return 2;
	}
	return 0;
}

/*
 * bench_usrvm_start: start the runtime with cfg (from usrvm_config_load,
 * which has applied the USRVM_* variables, and then the case's own
 * settings).
 * => 0, 1 (the runtime could not start) or 2 (bad configuration).  The
 *    library has already named the bad setting or missing permission.
 */
int
bench_usrvm_start(const char *prog, const struct usrvm_config *cfg)
{
	int error;

	if ((error = usrvm_init(cfg)) != 0) {
		fprintf(stderr, "%s: usrvm_init: %s\n", prog,
		    strerror(-error));
		return error == -EINVAL ? 2 : 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* usrvm statistics of one run                                         */
/* ------------------------------------------------------------------ */

/*
 * bench_lat_pct: a percentile of a latency histogram, as the upper bound
 * of the bucket holding it (as usrvm_stats does: p50 <= 8191 ns).
 */
static uint64_t
bench_lat_pct(const uint64_t *h, unsigned pct)
{
	uint64_t total = 0, want, seen = 0;

	for (unsigned b = 0; b < USRVM_LAT_BUCKETS; b++)
		total += h[b];
	if (total == 0)
		return 0;
	want = (total * pct + 99) / 100;
	for (unsigned b = 0; b < USRVM_LAT_BUCKETS; b++) {
		seen += h[b];
		if (seen >= want)
			return ((uint64_t)2 << b) - 1;
	}
	return UINT64_MAX;
}

/*
 * bench_ustats_settled: a snapshot of the statistics once every fault
 * message read has been accounted for.  A fault thread wakes the
 * faulting thread before it counts the fault (and may be preempted by
 * it, for milliseconds on a small machine); each message adds to the
 * latency histogram last, so the histogram's total catching up with
 * `faults` means nothing is in flight.  Gives up after about a second.
 */
void
bench_ustats_settled(struct usrvm_stats *st)
{
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t total = 0;

		usrvm_stats(st);
		for (unsigned b = 0; b < USRVM_LAT_BUCKETS; b++)
			total += st->fault_lat_ns[b];
		if (total >= st->faults)
			return;
		usleep(1000);
	}
}

/*
 * bench_ustats_diff: *d = the figures of the run between snapshots a, b.
 */
void
bench_ustats_diff(const struct usrvm_stats *a, const struct usrvm_stats *b,
    struct bench_ustats *d)
{
	uint64_t h[USRVM_LAT_BUCKETS];

	d->faults = b->faults - a->faults;
	d->zero = b->faults_zero - a->faults_zero;
	d->upper = b->faults_upper - a->faults_upper;
	d->wp = b->faults_wp - a->faults_wp;
	d->dup = b->faults_dup - a->faults_dup;
	d->errors = b->faults_error - a->faults_error;
	d->filled = b->pages_filled - a->pages_filled;
	for (unsigned i = 0; i < USRVM_LAT_BUCKETS; i++)
		h[i] = b->fault_lat_ns[i] - a->fault_lat_ns[i];
	d->lat_p50_ns = bench_lat_pct(h, 50);
	d->lat_p99_ns = bench_lat_pct(h, 99);
}

/* ------------------------------------------------------------------ */
/* the cases                                                           */
/* ------------------------------------------------------------------ */

struct bench_case {
	const char *name;
	const char *help;
	int (*run)(int argc, char **argv);
};

static const struct bench_case bench_cases[] = {
	{ "first-touch", "zero-fill faults: write one word per page of "
	    "fresh anonymous memory, sequential and random order", ft_main },
	{ "swap", "paging under a memory budget: write, random and "
	    "sequential reads of a working set larger than the budget",
	    sw_main },
	{ "malloc", "allocation-heavy programs on glibc, jemalloc, mimalloc "
	    "and libusrvm-preload.so; then under half their peak memory",
	    mw_main },
	{ "fork", "usrvm_fork: fault cost over generations of forks, the "
	    "cost of a fork, first writes", fk_main },
	{ "file", "mapped files under a memory budget, cold: random reads, "
	    "a sequential scan, writes and a sync of a file larger than the "
	    "budget", fl_main },
};

#define BENCH_NCASES	(sizeof(bench_cases) / sizeof(bench_cases[0]))

/*
 * usage: the program's usage and the list of cases.
 */
static void
usage(FILE *f)
{
	fprintf(f, "usage: %s CASE [options]   (%s CASE --help: the case's "
	    "options)\ncases:\n", BENCH_PROG, BENCH_PROG);
	for (size_t i = 0; i < BENCH_NCASES; i++)
		fprintf(f, "  %-12s %s\n", bench_cases[i].name,
		    bench_cases[i].help);
}

int
main(int argc, char **argv)
{
	static char prog[64];
	long ps = sysconf(_SC_PAGESIZE);

	bench_pagesize = ps > 0 ? (size_t)ps : 4096;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < BENCH_NCASES; i++) {
		if (strcmp(argv[1], bench_cases[i].name) != 0)
			continue;
		/* The case sees "usrvm-bench CASE" as its program name. */
		snprintf(prog, sizeof(prog), "%s %s", BENCH_PROG,
		    bench_cases[i].name);
		argv[1] = prog;
		return bench_cases[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "%s: unknown case '%s'\n", BENCH_PROG, argv[1]);
	usage(stderr);
	return 2;
}
