/*
 * swap.h: the swap case of usrvm-bench, shared by its three files:
 *
 *	swap.c		options, the runs (a child process each), the report
 *	swap_work.c	the workload: four phases over the working set, every
 *			read verified
 *	swap_kernel.c	the kernel contender's setting: a swap file and a
 *			memory cgroup, made with sandbox.c, which also runs
 *			the children and cleans up on every way out
 */
#ifndef BENCH_SWAP_H
#define BENCH_SWAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum sw_phase { SW_WRITE, SW_RANDOM, SW_REREAD, SW_RANDOM_MT, SW_NPHASES };

extern const char *const sw_phase_name[SW_NPHASES];

struct sw_opts {
	size_t size;			/* the working set, bytes */
	size_t npages;
	size_t mem;			/* the memory budget, bytes */
	unsigned long reads;		/* random reads per random phase */
	unsigned threads;		/* readers of the last phase */
	unsigned runs;
	uint64_t seed;
	const char *swap_dir;
	const char *prog;
};

/*
 * What a phase took: its time; the CPU time of the whole process in it
 * (every thread, the runtime's included: CPU seconds a second is how
 * many CPUs it kept busy); usrvm's page-ins and swap reads in it (zero
 * for the kernel).
 */
struct sw_cost {
	double secs, cpu;
	uint64_t pageins, reads;
};

/*
 * swap_work.c: run the four phases over the working set at base, which
 * the run tagged `tag` owns; `who` names the run in messages.  cost[]:
 * what each phase took.
 * => 0, or 1 (a read did not return what was written, or a reader thread
 *    could not start; said on stderr).
 */
int sw_workload(const struct sw_opts *o, char *base, const char *who,
    uint64_t tag, struct sw_cost cost[SW_NPHASES]);
/* The pages a phase reads or writes: its rate is that over its time. */
uint64_t sw_phase_pages(const struct sw_opts *o, enum sw_phase ph);

/*
 * swap_kernel.c.  sw_kernel_setup starts the sandbox (sandbox.h: the
 * signals' cleanup), then makes the swap file and the memory cgroup;
 * sb_cleanup removes them, sb_cgroup_join puts a child in the cgroup.
 * => 0, or -1 (the kernel contender cannot run here: one line on stdout
 *    said why, nothing is left behind).
 */
int sw_kernel_setup(const struct sw_opts *o);
/* "child in memory cgroup DIR (limit M), swap file FILE (S)" */
const char *sw_kernel_describe(const struct sw_opts *o, char *buf,
    size_t len);

/* What the kernel did during a run: from /proc/vmstat and the cgroup. */
struct sw_kstats {
	uint64_t pswpin, pswpout;	/* pages, system-wide */
	uint64_t peak;			/* the cgroup's peak usage, bytes */
};

void sw_kernel_stats(struct sw_kstats *ks);

#endif /* BENCH_SWAP_H */
