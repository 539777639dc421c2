/*
 * swap.h: the swap case of usrvm-bench, shared by its three files:
 *
 *	swap.c		options, the runs (a child process each), the report
 *	swap_work.c	the workload: four phases over the working set, every
 *			read verified
 *	swap_kernel.c	the kernel contender's setting (a swap file, a memory
 *			cgroup), the children, and the cleanup of both on
 *			every way out, signals included
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
 * swap_work.c: run the four phases over the working set at base, which
 * the run tagged `tag` owns; `who` names the run in messages.  secs[]:
 * the time of each phase.
 * => 0, or 1 (a read did not return what was written, or a reader thread
 *    could not start; said on stderr).
 */
int sw_workload(const struct sw_opts *o, char *base, const char *who,
    uint64_t tag, double secs[SW_NPHASES]);
/* The pages a phase reads or writes: its rate is that over its time. */
uint64_t sw_phase_pages(const struct sw_opts *o, enum sw_phase ph);

/*
 * swap_kernel.c.  sw_kernel_setup installs the handlers of SIGHUP,
 * SIGINT and SIGTERM (clean up, then die of the signal), then makes the
 * swap file and the memory cgroup.
 * => 0, or -1 (the kernel contender cannot run here: one line on stdout
 *    said why, nothing is left behind).
 */
int sw_kernel_setup(const struct sw_opts *o);
/* Kill a running child, swapoff and remove the file, remove the cgroup. */
void sw_kernel_cleanup(void);
/* "child in memory cgroup DIR (limit M), swap file FILE (S)" */
const char *sw_kernel_describe(const struct sw_opts *o, char *buf,
    size_t len);
/* In the kernel contender's child: move into the memory cgroup. */
int sw_kernel_join(const char *prog, const char *who);

/* What the kernel did during a run: from /proc/vmstat and the cgroup. */
struct sw_kstats {
	uint64_t pswpin, pswpout;	/* pages, system-wide */
	uint64_t peak;			/* the cgroup's peak usage, bytes */
	uint64_t oom_kills;		/* by the cgroup's OOM killer */
};

void sw_kernel_stats(struct sw_kstats *ks);
void sw_kernel_reset_peak(void);

/*
 * Children.  sw_child_start: fork; in the child (=> 0) the signals are
 * back to their defaults and the child dies with the bench.
 * sw_child_wait: its wait status, once it has exited (the cleanup kills
 * a child that has not).
 */
pid_t sw_child_start(void);
int sw_child_wait(pid_t pid);

#endif /* BENCH_SWAP_H */
