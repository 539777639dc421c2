/*
 * file.h: the file case of usrvm-bench, shared by its two files:
 *
 *	file.c		options, the data file, the contenders' mappings, the
 *			runs (a child process each, in sandbox.c's cgroup
 *			for the kernel), the report
 *	file_work.c	the data file's pattern and the three phases over
 *			a mapping of it, every read verified
 */
#ifndef BENCH_FILE_H
#define BENCH_FILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fl_phase { FL_RANDOM, FL_SCAN, FL_WRITE, FL_NPHASES };

extern const char *const fl_phase_name[FL_NPHASES];

struct fl_opts {
	size_t size;			/* the data file, bytes */
	size_t npages;
	size_t mem;			/* the memory budget, bytes */
	unsigned long reads;		/* reads of the random phase */
	unsigned runs;
	uint64_t seed;
	unsigned kdef_limit;		/* seconds; 0: none */
	const char *dir;		/* where the data file is made */
	const char *only;		/* "usrvm", "kernel" or NULL: both */
	const char *prog;
	uint64_t tag;			/* the data file's pattern */
	char path[PATH_MAX];		/* the data file */
};

/*
 * What the runtime or the kernel did during a phase: the difference of
 * two snapshots (fl_count_diff), except the two highs, which are the
 * highest so far.
 */
struct fl_count {
	uint64_t faults;		/* usrvm: messages; kernel: all faults */
	uint64_t majflt;		/* kernel: faults that waited for I/O */
	uint64_t read_bytes;		/* kernel: the process's reads from
					   storage (/proc/self/io) */
	uint64_t pageins, reads, pageouts, writes, write_ns, evict;
	uint64_t stalls, stall_ns;	/* usrvm: faults parked for memory */
	uint64_t read_max;		/* usrvm: largest read so far, pages */
	uint64_t ra_pages;		/* usrvm: pages read ahead */
	uint64_t resident_peak;		/* usrvm: pages, so far */
};

/*
 * One phase of one run.  done: the reads, pages scanned or pages
 * written; fewer than asked when the phase stopped at its time limit
 * (capped).  secs: the phase's time; the write phase's is that of the
 * writes, sync_secs that of the usrvm_sync or msync after them, and
 * sync its counters.
 */
struct fl_phase_res {
	double secs, sync_secs;
	uint64_t done;
	bool capped;
	struct fl_count cnt, sync;
};

/*
 * file_work.c.  The data file's page p holds, in word i, fl_pattern(tag,
 * p, i); the write phase replaces word FL_WWORD of the pages it writes
 * with a word of its run's tag, which no read phase checks, so that
 * every run reads the same file.
 */
#define FL_WWORD	1

int fl_file_fill(const struct fl_opts *o, int fd);
int fl_random(const struct fl_opts *o, const char *base, const char *who,
    unsigned limit, struct fl_phase_res *ph);
int fl_scan(const struct fl_opts *o, const char *base, const char *who,
    struct fl_phase_res *ph);
uint32_t *fl_write_order(const struct fl_opts *o, uint64_t runtag,
    size_t *n);
void fl_write(char *base, const uint32_t *order, size_t n, uint64_t runtag,
    unsigned limit, struct fl_phase_res *ph);
int fl_verify(const struct fl_opts *o, const char *who, uint64_t runtag,
    const uint32_t *order, size_t n);

#endif /* BENCH_FILE_H */
