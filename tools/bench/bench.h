/*
 * bench.h: what the cases of usrvm-bench share: the utilities of bench.c
 * and each case's entry point.  The program's contract (command line,
 * output, exit status) is described at the top of bench.c.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "usrvm.h"

#define BENCH_PROG		"usrvm-bench"
#define BENCH_DEF_RUNS		5
#define BENCH_MAX_RUNS		1000
#define BENCH_DEF_SEED		0x5eedf00dULL

/* The system's page size, set by main before a case runs. */
extern size_t bench_pagesize;

/*
 * bench_mix64: splitmix64's finalizer, a cheap good 64-bit hash.  Inline:
 * the cases call it once per page inside their timed loops.
 */
static inline uint64_t
bench_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

double bench_now(void);

/*
 * Options.  Each parses optarg, the argument of option `opt` ("--size"),
 * and on error prints "PROG: OPT 'ARG': why" and returns -1.
 */
int bench_opt_size(const char *prog, const char *opt, const char *arg,
    size_t *out);
int bench_opt_uint(const char *prog, const char *opt, const char *arg,
    unsigned long long min, unsigned long long max, unsigned long long *out);
/* A count of repetitions, 1 to BENCH_MAX_RUNS (`opt`: "--runs"...). */
int bench_opt_runs(const char *prog, const char *opt, const char *arg,
    unsigned *out);

/* Formatting and summaries. */
const char *bench_size_str(size_t len, char *buf, size_t buflen);
double bench_median(const double *v, unsigned n);
const char *bench_list(const double *v, unsigned n, char *buf,
    size_t buflen);
const char *bench_thp_setting(char *buf, size_t buflen);
void bench_header(const char *cname, const struct usrvm_config *cfg,
    const char *extra);

int bench_config_for(const char *prog, size_t size,
    struct usrvm_config *cfg);
int bench_usrvm_start(const char *prog, const struct usrvm_config *cfg);

/*
 * usrvm statistics of one run.  The runtime's counters are cumulative
 * since usrvm_init: a run's own figures are the difference of two
 * snapshots, its latency percentiles those of the difference of the
 * histograms.
 */
struct bench_ustats {
	uint64_t faults, zero, upper, wp, dup, errors, filled;
	uint64_t lat_p50_ns, lat_p99_ns;
};

void bench_ustats_settled(struct usrvm_stats *st);
void bench_ustats_diff(const struct usrvm_stats *a,
    const struct usrvm_stats *b, struct bench_ustats *d);

/* The cases: main functions taking the arguments after the case name. */
int ft_main(int argc, char **argv);
int sw_main(int argc, char **argv);
int mw_main(int argc, char **argv);
int fk_main(int argc, char **argv);
int fl_main(int argc, char **argv);

#endif /* BENCH_H */
