/*
 * file.c: the file case of usrvm-bench: a mapped file larger than the
 * memory budget, read at random, scanned, and written.
 *
 * A data file (2 GiB by default, on a disk file system) is made once,
 * every word of it a verifiable pattern, and mapped by every run of
 * three contenders, each run a child process of its own started after
 * the page cache was dropped, so that all start cold:
 *
 *	kernel		joins a memory cgroup limited to the budget (256 MiB
 *			by default; sandbox.c) and maps the file with
 *			mmap(MAP_SHARED), default advice;
 *	kernel-random	the same with MADV_RANDOM;
 *	usrvm		starts the runtime with the budget as mem_limit and
 *			maps the file with usrvm_map(USRVM_MAP_SHARED), no
 *			advice: usrvm reads the file itself (io_uring,
 *			O_DIRECT); it also sends its statistics.
 *
 * The phases are file_work.c's: random reads and a sequential scan
 * through a read-only mapping, then writes to a random quarter of the
 * pages through a writable one, the contender's sync (usrvm_sync with
 * USRVM_SYNC_SYNC, msync with MS_SYNC), and the file read back from the
 * device.  With default advice the kernel reads around each fault (8 MiB
 * on this machine's disk), which under a budget of an eighth of the file
 * makes its random phases slow (113-256 reads/s were measured here, 13
 * minutes or more for 200,000): the kernel contender's random and write
 * phases stop at --kernel-default-limit seconds, and its rate is that
 * over what it managed, which the output says.  Without root (the
 * cgroup, drop_caches) the kernel contenders are skipped and the page
 * cache is not dropped (usrvm's reads bypass it anyway).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bench.h"
#include "file.h"
#include "sandbox.h"

#define FL_DEF_SIZE		((size_t)2 << 30)
#define FL_DEF_MEM		((size_t)256 << 20)
#define FL_DEF_READS		200000UL
#define FL_DEF_KDEF_LIMIT	20
#define FL_MIN_MEM		((size_t)16 << 20)
/* usrvm's resident peak may pass the budget by this much, in pages. */
#define FL_PEAK_SLACK		1024

/* In the order of a run: the kernel's two first, as the swap case. */
enum fl_contender { FL_KERNEL, FL_KRANDOM, FL_USRVM, FL_NCONT };

static const char *const fl_cont_name[FL_NCONT] = {
	"kernel", "kernel-random", "usrvm"
};
static const char fl_cont_tag[FL_NCONT] = { 'k', 'r', 'u' };

/* What a run's child sends back through its pipe (sb_run). */
struct fl_result {
	struct fl_phase_res ph[FL_NPHASES];
};
_Static_assert(sizeof(struct fl_result) < PIPE_BUF,
    "a run's result must reach the parent in one write");

/*
 * fl_usage: the options of file.
 */
static void
fl_usage(FILE *f)
{
	fprintf(f,
	    "usage: %s file [options]\n"
	    "  A mapped file larger than a memory budget, cold (the page "
	    "cache\n"
	    "  dropped before each run): random page reads, a sequential "
	    "scan,\n"
	    "  then writes to a random quarter of the pages and a sync; every "
	    "read\n"
	    "  verified, the writes read back from the device.  usrvm "
	    "(mem_limit =\n"
	    "  the budget, no advice) against the kernel's mmap in a memory "
	    "cgroup\n"
	    "  limited to the budget, with default advice and with "
	    "MADV_RANDOM\n"
	    "  (needs root), a child process per run, interleaved.\n"
	    "options:\n"
	    "  --size SIZE      the data file (default 2G)\n"
	    "  --mem SIZE       the memory budget, at least 16M (default "
	    "256M)\n"
	    "  --reads N        reads of the random phase (default %lu)\n"
	    "  --runs N         repetitions of each contender (default %d)\n"
	    "  --seed N         seed of the random reads and writes (default "
	    "0x%llx)\n"
	    "  --dir DIR        where the data file is made, on a disk file "
	    "system\n"
	    "                   (default /var/tmp)\n"
	    "  --kernel-default-limit SECS\n"
	    "                   stop the kernel's default-advice random and "
	    "write\n"
	    "                   phases after SECS seconds, 0: never (default "
	    "%d)\n"
	    "  --only usrvm|kernel  run one side only\n"
	    "  --help           this text\n"
	    "environment: USRVM_FAULT_THREADS, USRVM_RESERVE, "
	    "USRVM_VERBOSE\n",
	    BENCH_PROG, FL_DEF_READS, BENCH_DEF_RUNS,
	    (unsigned long long)BENCH_DEF_SEED, FL_DEF_KDEF_LIMIT);
}

/* ------------------------------------------------------------------ */
/* the contenders                                                      */
/* ------------------------------------------------------------------ */

/*
 * fl_snap: what the contender has done so far.  usrvm: its statistics,
 * once every fault read is counted; the kernel: the process's faults
 * and its reads from storage.
 */
static void
fl_snap(enum fl_contender c, struct fl_count *n)
{
	struct usrvm_stats st;
	struct rusage ru;

	memset(n, 0, sizeof(*n));
	if (c == FL_USRVM) {
		bench_ustats_settled(&st);
		n->faults = st.faults;
		n->pageins = st.file_pageins;
		n->reads = st.file_reads;
		n->read_max = st.file_read_max;
		n->ra_pages = st.file_ra_pages;
		n->pageouts = st.file_pageouts;
		n->writes = st.file_writes;
		n->write_ns = st.file_write_ns;
		n->evict = st.evict_file;
		n->stalls = st.stalls;
		n->stall_ns = st.stall_ns;
		n->resident_peak = st.resident_peak;
		return;
	}
	getrusage(RUSAGE_SELF, &ru);
	n->faults = (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
	n->majflt = (uint64_t)ru.ru_majflt;
	n->read_bytes = sb_read_u64("/proc/self", "io", "read_bytes:");
}

/*
 * fl_count_diff: *d = the figures between snapshots a and b.
 */
static void
fl_count_diff(const struct fl_count *a, const struct fl_count *b,
    struct fl_count *d)
{
	d->faults = b->faults - a->faults;
	d->majflt = b->majflt - a->majflt;
	d->read_bytes = b->read_bytes - a->read_bytes;
	d->pageins = b->pageins - a->pageins;
	d->reads = b->reads - a->reads;
	d->ra_pages = b->ra_pages - a->ra_pages;
	d->pageouts = b->pageouts - a->pageouts;
	d->writes = b->writes - a->writes;
	d->write_ns = b->write_ns - a->write_ns;
	d->evict = b->evict - a->evict;
	d->stalls = b->stalls - a->stalls;
	d->stall_ns = b->stall_ns - a->stall_ns;
	d->read_max = b->read_max;
	d->resident_peak = b->resident_peak;
}

/*
 * fl_map: the contender's mapping of the whole data file, read-only or
 * (write) read-write.
 * => the address, or NULL (said).
 */
static char *
fl_map(const struct fl_opts *o, enum fl_contender c, bool write,
    const char *who)
{
	int prot, fd;
	char *base;

	if ((fd = open(o->path, (write ? O_RDWR : O_RDONLY) |
	    O_CLOEXEC)) < 0) {
		fprintf(stderr, "%s: %s: open %s: %s\n", o->prog, who,
		    o->path, strerror(errno));
		return NULL;
	}
	if (c == FL_USRVM) {
		prot = USRVM_PROT_READ | (write ? USRVM_PROT_WRITE : 0);
		base = usrvm_map(usrvm_default_space(), NULL, o->size, prot,
		    USRVM_MAP_SHARED, fd, 0);
		if (base == NULL)
			fprintf(stderr, "%s: %s: usrvm_map of %s: %s\n",
			    o->prog, who, o->path, strerror(errno));
		close(fd);
		return base;
	}
	prot = PROT_READ | (write ? PROT_WRITE : 0);
	base = mmap(NULL, o->size, prot, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED) {
		fprintf(stderr, "%s: %s: mmap of %s: %s\n", o->prog, who,
		    o->path, strerror(errno));
		return NULL;
	}
	if (c == FL_KRANDOM && madvise(base, o->size, MADV_RANDOM) != 0) {
		fprintf(stderr, "%s: %s: madvise(MADV_RANDOM): %s\n", o->prog,
		    who, strerror(errno));
		munmap(base, o->size);
		return NULL;
	}
	return base;
}

/*
 * fl_unmap: undo fl_map.  usrvm writes back what is still dirty (after
 * a sync, nothing).  => 0, or -1 (said).
 */
static int
fl_unmap(const struct fl_opts *o, enum fl_contender c, char *base,
    const char *who)
{
	int error;

	error = c == FL_USRVM ? -usrvm_unmap(usrvm_default_space(), base,
	    o->size) : munmap(base, o->size) != 0 ? errno : 0;
	if (error != 0) {
		fprintf(stderr, "%s: %s: unmapping the file: %s\n", o->prog,
		    who, strerror(error));
		return -1;
	}
	return 0;
}

/*
 * fl_sync: write the mapping's dirty pages back and wait for the device.
 * => 0, or -1 (said).
 */
static int
fl_sync(const struct fl_opts *o, enum fl_contender c, char *base,
    const char *who)
{
	int error;

	error = c == FL_USRVM ? -usrvm_sync(base, o->size, USRVM_SYNC_SYNC) :
	    msync(base, o->size, MS_SYNC) != 0 ? errno : 0;
	if (error != 0) {
		fprintf(stderr, "%s: %s: %s: %s\n", o->prog, who, c == FL_USRVM ?
		    "usrvm_sync(USRVM_SYNC_SYNC)" : "msync(MS_SYNC)",
		    strerror(error));
		return -1;
	}
	return 0;
}

/*
 * fl_usrvm_start: start the runtime with the budget; its swap device
 * (which file pages never use) in --dir.
 * => 0, or the child's exit status (said).
 */
static int
fl_usrvm_start(const struct fl_opts *o)
{
	struct usrvm_config cfg;

	if (usrvm_config_load(&cfg) != 0)
		return 2;
	cfg.mem_limit = o->mem;
	cfg.swap_path = o->dir;
	cfg.swap_size = 0;		/* the runtime's default */
	return bench_usrvm_start(o->prog, &cfg);
}

/*
 * fl_phases: the three phases on the contender's mappings, each between
 * two snapshots of its counters.
 * => 0, or 1 (failed; said).
 */
static int
fl_phases(const struct fl_opts *o, enum fl_contender c, const char *who,
    uint64_t runtag, struct fl_result *res)
{
	struct fl_phase_res *ph = res->ph;
	unsigned limit = c == FL_KERNEL ? o->kdef_limit : 0;
	struct fl_count a, b;
	uint32_t *order;
	size_t n;
	double t0;
	char *base;
	int bad;

	if ((base = fl_map(o, c, false, who)) == NULL)
		return 1;
	fl_snap(c, &a);
	if (fl_random(o, base, who, limit, &ph[FL_RANDOM]) != 0)
		return 1;
	fl_snap(c, &b);
	fl_count_diff(&a, &b, &ph[FL_RANDOM].cnt);
	if (fl_scan(o, base, who, &ph[FL_SCAN]) != 0)
		return 1;
	fl_snap(c, &a);
	fl_count_diff(&b, &a, &ph[FL_SCAN].cnt);
	if (fl_unmap(o, c, base, who) != 0)
		return 1;

	if ((order = fl_write_order(o, runtag, &n)) == NULL) {
		fprintf(stderr, "%s: %s: no memory for the write order\n",
		    o->prog, who);
		return 1;
	}
	if ((base = fl_map(o, c, true, who)) == NULL) {
		free(order);
		return 1;
	}
	fl_snap(c, &a);
	fl_write(base, order, n, runtag, limit, &ph[FL_WRITE]);
	fl_snap(c, &b);
	fl_count_diff(&a, &b, &ph[FL_WRITE].cnt);
	t0 = bench_now();
	if (fl_sync(o, c, base, who) != 0) {
		free(order);
		return 1;
	}
	ph[FL_WRITE].sync_secs = bench_now() - t0;
	fl_snap(c, &a);
	fl_count_diff(&b, &a, &ph[FL_WRITE].sync);
	/* Before the unmap, which would write back what the sync missed. */
	bad = fl_verify(o, who, runtag, order, ph[FL_WRITE].done);
	free(order);
	if (bad || fl_unmap(o, c, base, who) != 0)
		return 1;
	return 0;
}

/* What a run's child is to do. */
struct fl_child_arg {
	const struct fl_opts *o;
	enum fl_contender c;
	const char *who;
	uint64_t runtag;
};

/*
 * fl_child: the body of a run's child (sb_run): set up the contender,
 * run the phases into the struct fl_result at result.
 * => the child's exit status: 0, 1 (failed; said) or 2 (configuration).
 */
static int
fl_child(void *arg, void *result)
{
	const struct fl_child_arg *a = arg;
	struct fl_result *res = result;
	int status;

	memset(res, 0, sizeof(*res));
	if (a->c == FL_USRVM) {
		if ((status = fl_usrvm_start(a->o)) != 0)
			return status;
	} else if (sb_cgroup_join(a->o->prog, a->who) != 0) {
		return 1;
	}
	status = fl_phases(a->o, a->c, a->who, a->runtag, res);
	if (a->c == FL_USRVM)
		usrvm_shutdown();
	return status;
}

/* ------------------------------------------------------------------ */
/* the runs                                                            */
/* ------------------------------------------------------------------ */

/*
 * fl_drop_caches: write the page cache back and drop it, so that the run
 * about to start finds none of the file in memory.  Says once if it
 * cannot (not root).
 */
static void
fl_drop_caches(void)
{
	static bool said;
	int error;

	sync();
	error = sb_write("/proc/sys/vm", "drop_caches", "1");
	if (error != 0 && !said) {
		printf("file WARNING: cannot drop the page cache "
		    "(/proc/sys/vm/drop_caches: %s): the kernel contenders "
		    "may find the file cached\n", strerror(error));
		said = true;
	}
}

/*
 * fl_run: one run of one contender, in a child, after dropping the page
 * cache.  *peak: the cgroup's peak usage during the run (kernel).
 * => 0, or 1 (the child failed; said).
 */
static int
fl_run(const struct fl_opts *o, enum fl_contender c, unsigned r,
    struct fl_result *res, uint64_t *peak)
{
	char who[64];
	struct fl_child_arg a = {
		.o = o, .c = c, .who = who,
		.runtag = bench_mix64(o->tag ^ ((uint64_t)r << 2 | c)),
	};
	int error;

	snprintf(who, sizeof(who), "%s run %u", fl_cont_name[c], r + 1);
	fl_drop_caches();
	if (c != FL_USRVM)
		sb_cgroup_reset_peak();
	error = sb_run(o->prog, who, fl_child, &a, res, sizeof(*res));
	if (c != FL_USRVM)
		*peak = sb_cgroup_peak();
	return error;
}

/* ------------------------------------------------------------------ */
/* the report                                                          */
/* ------------------------------------------------------------------ */

/*
 * Every run's results, by contender and run, and the contenders run.
 */
struct fl_all {
	bool ran[FL_NCONT];
	struct fl_result res[FL_NCONT][BENCH_MAX_RUNS];
	uint64_t kpeak[FL_NCONT];	/* the cgroup's peak, last run */
	uint64_t upeak;			/* usrvm's resident peak, highest */
};

/* The figures of a phase the report gives the median of. */
enum fl_fig { FL_FIG_RATE, FL_FIG_SECS, FL_FIG_SYNC, FL_FIG_DONE };

/*
 * fl_figure: a figure of phase p of a run.  The rate is in the unit the
 * phase is reported in: reads/s for the random phase, MB/s of the file
 * for the scan, MB/s of pages written and synced for the write phase
 * (the writes and the sync together: the pages that did not fit in the
 * budget were written back during the writes).
 */
static double
fl_figure(enum fl_fig f, enum fl_phase p, const struct fl_phase_res *ph)
{
	double secs = ph->secs + (p == FL_WRITE ? ph->sync_secs : 0);

	switch (f) {
	case FL_FIG_SECS:
		return ph->secs;
	case FL_FIG_SYNC:
		return ph->sync_secs;
	case FL_FIG_DONE:
		return (double)ph->done;
	case FL_FIG_RATE:
		break;
	}
	if (secs <= 0)
		return 0;
	if (p == FL_RANDOM)
		return (double)ph->done / secs;
	return (double)ph->done * (double)bench_pagesize / secs / 1e6;
}

/*
 * fl_runs: v[] = figure f of phase p in every run of contender c.
 * => the median.
 */
static double
fl_runs(const struct fl_opts *o, const struct fl_all *all,
    enum fl_contender c, enum fl_phase p, enum fl_fig f,
    double v[BENCH_MAX_RUNS])
{
	for (unsigned r = 0; r < o->runs; r++)
		v[r] = fl_figure(f, p, &all->res[c][r].ph[p]);
	return bench_median(v, o->runs);
}

/* fl_median: the median of figure f of phase p over c's runs. */
static double
fl_median(const struct fl_opts *o, const struct fl_all *all,
    enum fl_contender c, enum fl_phase p, enum fl_fig f)
{
	double v[BENCH_MAX_RUNS];

	return fl_runs(o, all, c, p, f, v);
}

/*
 * fl_ratio: "usrvm/NAME=R" of the medians, or "n/a".
 */
static const char *
fl_ratio(const struct fl_all *all, enum fl_contender c, double mu,
    double mc, char *buf, size_t len)
{
	if (!all->ran[c] || !all->ran[FL_USRVM] || mc <= 0)
		snprintf(buf, len, "usrvm/%s=n/a", fl_cont_name[c]);
	else
		snprintf(buf, len, "usrvm/%s=%.2f", fl_cont_name[c], mu / mc);
	return buf;
}

/*
 * fl_report_phase: the line of one phase: each contender's median,
 * usrvm's ratios to both kernels, every run; then a note for a
 * contender that stopped at its time limit.
 */
static void
fl_report_phase(const struct fl_opts *o, const struct fl_all *all,
    enum fl_phase p)
{
	static const char *const unit[FL_NPHASES] = {
		"reads/s", "GB/s", "MB/s"
	};
	char fig[FL_NCONT][48], runs[FL_NCONT * (16 * BENCH_MAX_RUNS + 8)];
	char rk[48], rr[48];
	double med[FL_NCONT], v[BENCH_MAX_RUNS];
	size_t off = 0;

	for (int c = 0; c < FL_NCONT; c++) {
		char list[16 * BENCH_MAX_RUNS];

		med[c] = 0;
		snprintf(fig[c], sizeof(fig[c]), "%s n/a", fl_cont_name[c]);
		if (!all->ran[c])
			continue;
		med[c] = fl_runs(o, all, c, p, FL_FIG_RATE, v);
		if (p == FL_SCAN)
			snprintf(fig[c], sizeof(fig[c]), "%s %.2f %s",
			    fl_cont_name[c], med[c] / 1000, unit[p]);
		else
			snprintf(fig[c], sizeof(fig[c]), "%s %.0f %s",
			    fl_cont_name[c], med[c], unit[p]);
		off += snprintf(runs + off, sizeof(runs) - off, "%s%c=%s",
		    off ? " " : "", fl_cont_tag[c], bench_list(v, o->runs,
		    list, sizeof(list)));
	}
	printf("file %-10s %s  %s  %s  %s  %s  (median of %u; runs%s: %s)\n",
	    fl_phase_name[p], fig[FL_KERNEL], fig[FL_KRANDOM], fig[FL_USRVM],
	    fl_ratio(all, FL_KRANDOM, med[FL_USRVM], med[FL_KRANDOM], rr,
	    sizeof(rr)), fl_ratio(all, FL_KERNEL, med[FL_USRVM],
	    med[FL_KERNEL], rk, sizeof(rk)), o->runs,
	    p == FL_RANDOM ? "" : " in MB/s", runs);

	for (int c = 0; c < FL_NCONT; c++) {
		unsigned capped = 0;

		if (!all->ran[c])
			continue;
		for (unsigned r = 0; r < o->runs; r++)
			capped += all->res[c][r].ph[p].capped;
		if (capped == 0)
			continue;
		printf("file NOTE: %s %s stopped at --kernel-default-limit "
		    "(%u s) in %u of %u runs: its rate is over the %.0f %s "
		    "(median) it managed of %" PRIu64 "\n", fl_cont_name[c],
		    fl_phase_name[p], o->kdef_limit, capped, o->runs,
		    fl_median(o, all, c, p, FL_FIG_DONE),
		    p == FL_RANDOM ? "reads" : "pages written",
		    p == FL_RANDOM ? (uint64_t)o->reads :
		    (uint64_t)(o->npages / 4 > 0 ? o->npages / 4 : 1));
	}
}

/*
 * fl_report_stats: what each contender did in each phase (last run):
 * the kernel's faults and reads from storage, usrvm's own counters.
 */
static void
fl_report_stats(const struct fl_opts *o, const struct fl_all *all)
{
	const unsigned last = o->runs - 1;
	const size_t ps = bench_pagesize;

	for (int p = 0; p < FL_NPHASES; p++) {
		const struct fl_phase_res *u = &all->res[FL_USRVM][last].ph[p];
		const struct fl_count *uc = &u->cnt;

		for (int c = FL_KERNEL; c <= FL_KRANDOM; c++) {
			const struct fl_phase_res *kp =
			    &all->res[c][last].ph[p];

			if (!all->ran[c])
				continue;
			printf("file kernel-stats %s %s (last run): faults=%"
			    PRIu64 " majflt=%" PRIu64 " read_mib=%" PRIu64
			    " (%.1f pages per %s)", fl_cont_name[c],
			    fl_phase_name[p], kp->cnt.faults, kp->cnt.majflt,
			    kp->cnt.read_bytes >> 20, kp->done > 0 ?
			    (double)kp->cnt.read_bytes / ps /
			    (double)kp->done : 0,
			    p == FL_RANDOM ? "read" : "page");
			if (p == FL_WRITE)
				printf(" writes %.2f s, msync %.2f s",
				    kp->secs, kp->sync_secs);
			printf("\n");
		}
		if (!all->ran[FL_USRVM])
			continue;
		printf("file usrvm-stats %s (last run): faults=%" PRIu64
		    " file_pageins=%" PRIu64 " file_reads=%" PRIu64
		    " (%.1f pages a read) file_read_max=%" PRIu64
		    " file_ra_pages=%" PRIu64 " evict_file=%" PRIu64
		    " file_pageouts=%" PRIu64 " file_writes=%" PRIu64
		    " stalls=%" PRIu64 " (%" PRIu64
		    " ms) resident_peak=%" PRIu64 " pages (%" PRIu64 " MiB)",
		    fl_phase_name[p], uc->faults, uc->pageins, uc->reads,
		    uc->reads > 0 ? (double)uc->pageins / (double)uc->reads :
		    0, uc->read_max, uc->ra_pages, uc->evict, uc->pageouts,
		    uc->writes, uc->stalls, uc->stall_ns / 1000000,
		    uc->resident_peak,
		    uc->resident_peak * ps >> 20);
		if (p == FL_WRITE)
			printf("; writes %.2f s, then usrvm_sync %.2f s: "
			    "file_pageouts=%" PRIu64 " file_writes=%" PRIu64
			    " file_write_ms=%" PRIu64, u->secs, u->sync_secs,
			    u->sync.pageouts, u->sync.writes,
			    u->sync.write_ns / 1000000);
		printf("\n");
	}
	if (all->ran[FL_KERNEL] || all->ran[FL_KRANDOM])
		printf("file kernel-stats cgroup peak (last run): kernel %"
		    PRIu64 " MiB, kernel-random %" PRIu64 " MiB\n",
		    all->kpeak[FL_KERNEL] >> 20, all->kpeak[FL_KRANDOM] >> 20);
}

/*
 * fl_report: the result lines: one per phase, the write phase's times,
 * the targets, the counters; a warning if usrvm held more pages than
 * its budget allows.
 */
static void
fl_report(const struct fl_opts *o, const struct fl_all *all)
{
	char line[FL_NCONT][64];
	double mu, mc;

	for (int p = 0; p < FL_NPHASES; p++)
		fl_report_phase(o, all, p);
	for (int c = 0; c < FL_NCONT; c++)
		if (all->ran[c])
			snprintf(line[c], sizeof(line[c]), "%s %.2f+%.2f s",
			    fl_cont_name[c], fl_median(o, all, c, FL_WRITE,
			    FL_FIG_SECS), fl_median(o, all, c, FL_WRITE,
			    FL_FIG_SYNC));
		else
			snprintf(line[c], sizeof(line[c]), "%s n/a",
			    fl_cont_name[c]);
	printf("file write-time %s  %s  %s  (writes + sync, medians)\n",
	    line[FL_KERNEL], line[FL_KRANDOM], line[FL_USRVM]);

	if (all->ran[FL_USRVM] && all->ran[FL_KRANDOM] &&
	    all->ran[FL_KERNEL]) {
		mu = fl_median(o, all, FL_USRVM, FL_RANDOM, FL_FIG_RATE);
		mc = fl_median(o, all, FL_KRANDOM, FL_RANDOM, FL_FIG_RATE);
		printf("file targets: random usrvm/kernel-random=%.2f (>= 1.0: "
		    "%s)", mc > 0 ? mu / mc : 0, mu >= mc ? "met" : "missed");
		mu = fl_median(o, all, FL_USRVM, FL_SCAN, FL_FIG_RATE);
		mc = fl_median(o, all, FL_KERNEL, FL_SCAN, FL_FIG_RATE);
		printf("; sequential usrvm/kernel=%.2f (>= 1.0: %s)\n",
		    mc > 0 ? mu / mc : 0, mu >= mc ? "met" : "missed");
	}
	fl_report_stats(o, all);
	if (all->upeak > o->mem / bench_pagesize + FL_PEAK_SLACK)
		printf("file WARNING: usrvm resident_peak=%" PRIu64 " pages "
		    "(highest of the runs) passes the budget of %zu pages by "
		    "more than %d: mem_limit was not enforced\n", all->upeak,
		    o->mem / bench_pagesize, FL_PEAK_SLACK);
}

/* ------------------------------------------------------------------ */
/* options and main                                                    */
/* ------------------------------------------------------------------ */

/*
 * fl_options: parse the options into *o.
 * => -1 (go on), or the exit status (--help: 0, usage: 2).
 */
static int
fl_options(int argc, char **argv, struct fl_opts *o)
{
	static const struct option longopts[] = {
		{ "size",	required_argument, NULL, 's' },
		{ "mem",	required_argument, NULL, 'm' },
		{ "reads",	required_argument, NULL, 'n' },
		{ "runs",	required_argument, NULL, 'r' },
		{ "seed",	required_argument, NULL, 'S' },
		{ "dir",	required_argument, NULL, 'd' },
		{ "kernel-default-limit", required_argument, NULL, 'l' },
		{ "only",	required_argument, NULL, 'o' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ NULL,		0,		   NULL, 0 }
	};
	unsigned long long v;
	struct statfs sf;
	struct stat sb;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (bench_opt_size(o->prog, "--size", optarg,
			    &o->size) != 0)
				return 2;
			break;
		case 'm':
			if (bench_opt_size(o->prog, "--mem", optarg,
			    &o->mem) != 0)
				return 2;
			break;
		case 'n':
			if (bench_opt_uint(o->prog, "--reads", optarg, 1,
			    1000000000, &v) != 0)
				return 2;
			o->reads = (unsigned long)v;
			break;
		case 'r':
			if (bench_opt_runs(o->prog, "--runs", optarg,
			    &o->runs) != 0)
				return 2;
			break;
		case 'S':
			if (bench_opt_uint(o->prog, "--seed", optarg, 0,
			    UINT64_MAX, &v) != 0)
				return 2;
			o->seed = v;
			break;
		case 'd':
			o->dir = optarg;
			break;
		case 'l':
			if (bench_opt_uint(o->prog, "--kernel-default-limit",
			    optarg, 0, 86400, &v) != 0)
				return 2;
			o->kdef_limit = (unsigned)v;
			break;
		case 'o':
			if (strcmp(optarg, "usrvm") != 0 &&
			    strcmp(optarg, "kernel") != 0) {
				fprintf(stderr, "%s: --only '%s': expected "
				    "usrvm or kernel\n", o->prog, optarg);
				return 2;
			}
			o->only = optarg;
			break;
		case 'h':
			fl_usage(stdout);
			return 0;
		default:
			fl_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", o->prog,
		    argv[optind]);
		fl_usage(stderr);
		return 2;
	}
	/* Below that, the kernel's child pages its own code and stack. */
	if (o->mem < FL_MIN_MEM) {
		fprintf(stderr, "%s: --mem: at least 16M\n", o->prog);
		return 2;
	}
	if (o->size / bench_pagesize > UINT32_MAX) {
		fprintf(stderr, "%s: --size: at most 2^32 pages\n", o->prog);
		return 2;
	}
	if (stat(o->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "%s: --dir %s: not a directory\n", o->prog,
		    o->dir);
		return 2;
	}
	/*
	 * In memory, the file would be no file to read: the kernel would
	 * map tmpfs's pages, and dropping the page cache would not drop
	 * them.
	 */
	if (statfs(o->dir, &sf) == 0 && (sf.f_type == TMPFS_MAGIC ||
	    sf.f_type == RAMFS_MAGIC)) {
		fprintf(stderr, "%s: --dir %s: a file system in memory; the "
		    "file must be on a disk\n", o->prog, o->dir);
		return 2;
	}
	o->npages = o->size / bench_pagesize;
	return -1;
}

/*
 * fl_make_file: make and fill the data file in --dir (removed by the
 * cleanup).  => 0, or -1 (said).
 */
static int
fl_make_file(struct fl_opts *o)
{
	char sz[32];
	double t0 = bench_now(), secs;
	int fd, error;

	if ((fd = sb_file_make(o->dir, "usrvm-bench-file", false, 0,
	    o->path, sizeof(o->path))) < 0) {
		fprintf(stderr, "%s: cannot make a file in %s: %s\n", o->prog,
		    o->dir, strerror(errno));
		return -1;
	}
	error = fl_file_fill(o, fd);
	close(fd);
	if (error != 0) {
		fprintf(stderr, "%s: writing %s: %s\n", o->prog, o->path,
		    strerror(error));
		return -1;
	}
	secs = bench_now() - t0;
	printf("file data: %s (%s) written in %.1f s (%.0f MB/s)\n", o->path,
	    bench_size_str(o->size, sz, sizeof(sz)), secs,
	    secs > 0 ? (double)o->size / secs / 1e6 : 0);
	return 0;
}

/*
 * fl_main: the file case: the cgroup, the data file, the interleaved
 * runs, the report, the cleanup.
 * => 0, 1 (a run failed) or 2 (usage).
 */
int
fl_main(int argc, char **argv)
{
	static struct fl_all all;
	struct fl_opts o = {
		.size = FL_DEF_SIZE, .mem = FL_DEF_MEM, .reads = FL_DEF_READS,
		.runs = BENCH_DEF_RUNS, .seed = BENCH_DEF_SEED,
		.kdef_limit = FL_DEF_KDEF_LIMIT, .dir = "/var/tmp",
		.prog = argv[0],
	};
	struct usrvm_config cfg;
	char sz[32], mem[32], why[PATH_MAX + 256], extra[PATH_MAX + 256];
	bool kernel, usrvm;
	uint64_t peak = 0;
	int status;

	if ((status = fl_options(argc, argv, &o)) >= 0)
		return status;
	if (bench_config_for(o.prog, o.size, &cfg) != 0)
		return 2;
	o.tag = bench_mix64(o.seed ^ 0x66696c65);	/* "file" */
	kernel = o.only == NULL || strcmp(o.only, "kernel") == 0;
	usrvm = o.only == NULL || strcmp(o.only, "usrvm") == 0;

	snprintf(extra, sizeof(extra), "size=%s (%zu pages of %zu B) mem=%s "
	    "reads=%lu runs=%u seed=%#llx dir=%s kernel-default-limit=%us%s%s",
	    bench_size_str(o.size, sz, sizeof(sz)), o.npages, bench_pagesize,
	    bench_size_str(o.mem, mem, sizeof(mem)), o.reads, o.runs,
	    (unsigned long long)o.seed, o.dir, o.kdef_limit,
	    o.only != NULL ? " only=" : "", o.only != NULL ? o.only : "");
	bench_header("file", &cfg, extra);
	sb_init("file");
	if (kernel && sb_cgroup_make(o.mem, why, sizeof(why)) != 0) {
		printf("file kernel skipped: %s\n", why);
		kernel = false;
		if (!usrvm)
			goto fail;
	}
	if (fl_make_file(&o) != 0)
		goto fail;
	printf("file contenders: kernel=%s%s%s usrvm=child with mem_limit=%s, "
	    "usrvm_map(SHARED), no advice; phases: random (%lu reads, 4 "
	    "words checked each), sequential (every page, one word checked), "
	    "write (one word in each of a random quarter of the pages, then "
	    "usrvm_sync(SYNC) / msync(MS_SYNC), then the file read back "
	    "with O_DIRECT), each timed whole; page cache dropped before "
	    "each run; runs interleaved %s\n", kernel ? "child in memory "
	    "cgroup " : "skipped", kernel ? sb_cgroup_dir() : "", kernel ?
	    ", mmap(SHARED), default advice; kernel-random=the same with "
	    "MADV_RANDOM;" : "", mem, o.reads, kernel && usrvm ?
	    "k,r,u,k,r,u,..." : kernel ? "k,r,k,r,..." : "u,u,...");

	all.ran[FL_KERNEL] = all.ran[FL_KRANDOM] = kernel;
	all.ran[FL_USRVM] = usrvm;
	for (unsigned r = 0; r < o.runs; r++) {
		for (int c = 0; c < FL_NCONT; c++) {
			struct fl_result *res = &all.res[c][r];

			if (!all.ran[c])
				continue;
			if (fl_run(&o, c, r, res, &peak) != 0)
				goto fail;
			if (c != FL_USRVM)
				all.kpeak[c] = peak;
			else if (res->ph[FL_WRITE].sync.resident_peak >
			    all.upeak)
				all.upeak = res->ph[FL_WRITE].sync.resident_peak;
		}
	}
	sb_cleanup();
	fl_report(&o, &all);
	fflush(stdout);
	return 0;

fail:
	sb_cleanup();
	fflush(stdout);
	fprintf(stderr, "%s: FAILED\n", o.prog);
	return 1;
}
