/*
 * swap.c: the swap case of usrvm-bench: paging under a memory budget.
 *
 * A working set larger than the budget (1 GiB against 256 MiB by
 * default) goes through the four phases of swap_work.c: write, random
 * reads, sequential re-read, random reads by several threads.  Every run
 * of a contender is a child process of its own, so that each starts
 * with nothing resident and nothing on swap, and sends its phases'
 * times back through a pipe:
 *
 *	kernel	joins a memory cgroup limited to the budget, with a swap
 *		file (swap_kernel.c), and maps the set with mmap
 *		(MADV_NOHUGEPAGE: 4 KiB pages, as usrvm pages);
 *	usrvm	starts the runtime with the budget as mem_limit and its swap
 *		device in --swap-dir, and maps the set with usrvm_map; it
 *		also sends its paging statistics.
 *
 * Without root or a cgroup v1 memory controller the kernel contender is
 * skipped (one line says why) and usrvm runs alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "sandbox.h"
#include "swap.h"

#define SW_DEF_RUNS		3
#define SW_DEF_READS		200000UL
#define SW_DEF_THREADS		4
#define SW_MAX_THREADS		256
#define SW_MIN_MEM		((size_t)16 << 20)
/* usrvm's resident peak may pass the budget by this much, in pages. */
#define SW_PEAK_SLACK		1024

enum sw_contender { SW_KERNEL, SW_USRVM, SW_NCONT };

static const char *const sw_cont_name[SW_NCONT] = { "kernel", "usrvm" };
static const char sw_cont_tag[SW_NCONT] = { 'k', 'u' };

/*
 * What a run's child sends back through its pipe; the paging counters
 * are usrvm's (zero for the kernel, whose figures the parent reads).
 */
struct sw_result {
	struct sw_cost cost[SW_NPHASES];
	uint64_t pageins, pageouts, resident_peak;
};

/*
 * sw_usage: the options of swap.
 */
static void
sw_usage(FILE *f)
{
	fprintf(f,
	    "usage: %s swap [options]\n"
	    "  Page a working set larger than a memory budget: write every\n"
	    "  page, random reads, sequential re-read, random reads by\n"
	    "  several threads, every read verified.  The kernel (a memory\n"
	    "  cgroup limited to the budget, a swap file; needs root) "
	    "against\n"
	    "  usrvm (mem_limit = the budget), a child process per run,\n"
	    "  interleaved.\n"
	    "options:\n"
	    "  --size SIZE      the working set (default 1G)\n"
	    "  --mem SIZE       the memory budget, at least 16M (default "
	    "256M)\n"
	    "  --reads N        random reads of each random phase (default "
	    "%lu)\n"
	    "  --threads N      readers of the last phase (default %d)\n"
	    "  --runs N         repetitions of each contender (default %d)\n"
	    "  --seed N         seed of the random reads (default 0x%llx)\n"
	    "  --swap-dir DIR   where the swap files go (default /var/tmp)\n"
	    "  --help           this text\n"
	    "environment: USRVM_FAULT_THREADS, USRVM_RESERVE, "
	    "USRVM_VERBOSE\n",
	    BENCH_PROG, SW_DEF_READS, SW_DEF_THREADS, SW_DEF_RUNS,
	    (unsigned long long)BENCH_DEF_SEED);
}

/*
 * sw_map_kernel: the kernel contender's working set, in its cgroup.
 * => the address, or NULL (said).
 */
static char *
sw_map_kernel(const struct sw_opts *o, const char *who)
{
	char *base;

	if (sb_cgroup_join(o->prog, who) != 0)
		return NULL;
	base = mmap(NULL, o->size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		fprintf(stderr, "%s: %s: mmap %zu bytes: %s\n", o->prog, who,
		    o->size, strerror(errno));
		return NULL;
	}
	if (madvise(base, o->size, MADV_NOHUGEPAGE) != 0) {
		fprintf(stderr, "%s: %s: madvise(MADV_NOHUGEPAGE): %s\n",
		    o->prog, who, strerror(errno));
		return NULL;
	}
	return base;
}

/*
 * sw_map_usrvm: start the runtime with the budget and map the usrvm
 * contender's working set.
 * => the address, or NULL with *status the child's exit status (said).
 */
static char *
sw_map_usrvm(const struct sw_opts *o, const char *who, int *status)
{
	struct usrvm_config cfg;
	char *base;

	if (usrvm_config_load(&cfg) != 0) {
		*status = 2;
		return NULL;
	}
	cfg.mem_limit = o->mem;
	cfg.swap_path = o->swap_dir;
	cfg.swap_size = 0;		/* the runtime's default */
	if ((*status = bench_usrvm_start(o->prog, &cfg)) != 0)
		return NULL;
	base = usrvm_map(usrvm_default_space(), NULL, o->size,
	    USRVM_PROT_READ | USRVM_PROT_WRITE,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0);
	if (base == NULL) {
		fprintf(stderr, "%s: %s: usrvm_map %zu bytes: %s%s\n",
		    o->prog, who, o->size, strerror(errno), errno == ENOMEM ?
		    " (the budget and the runtime's default swap, 8 x --mem, "
		    "must hold --size)" : "");
		*status = 1;
	}
	return base;
}

/* What a run's child is to do. */
struct sw_child_arg {
	const struct sw_opts *o;
	enum sw_contender c;
	const char *who;
	uint64_t tag;
};

/*
 * sw_child: the body of a run's child (sb_run): map, run the phases,
 * fill in the struct sw_result at result.
 * => the child's exit status: 0, 1 (failed; said) or 2 (configuration).
 */
static int
sw_child(void *arg, void *result)
{
	const struct sw_child_arg *a = arg;
	struct sw_result *res = result;
	struct usrvm_stats st;
	int status = 1;
	char *base;

	memset(res, 0, sizeof(*res));
	base = a->c == SW_KERNEL ? sw_map_kernel(a->o, a->who) :
	    sw_map_usrvm(a->o, a->who, &status);
	if (base == NULL)
		return status;
	if (sw_workload(a->o, base, a->who, a->tag, res->cost) != 0)
		return 1;
	if (a->c == SW_USRVM) {
		usrvm_stats(&st);
		res->pageins = st.pageins;
		res->pageouts = st.pageouts;
		res->resident_peak = st.resident_peak;
		usrvm_shutdown();
	}
	return 0;
}

/*
 * sw_run: one run of one contender, in a child.  *ks: the kernel's
 * figures of the run (kernel only).
 * => 0, or 1 (the child failed; said).
 */
static int
sw_run(const struct sw_opts *o, enum sw_contender c, unsigned r,
    struct sw_result *res, struct sw_kstats *ks)
{
	struct sw_kstats k0;
	char who[64];
	struct sw_child_arg a = {
		.o = o, .c = c, .who = who,
		.tag = bench_mix64(o->seed ^ ((uint64_t)r << 1 | c)),
	};
	int error;

	snprintf(who, sizeof(who), "%s run %u", sw_cont_name[c], r + 1);
	if (c == SW_KERNEL) {
		sb_cgroup_reset_peak();
		sw_kernel_stats(&k0);
	}
	error = sb_run(o->prog, who, sw_child, &a, res, sizeof(*res));
	if (c == SW_KERNEL) {
		sw_kernel_stats(ks);
		ks->pswpin -= k0.pswpin;
		ks->pswpout -= k0.pswpout;
	}
	return error;
}

/*
 * sw_report: the result lines: for each phase the kernel against usrvm,
 * then what each did to get there (last run), and a warning if usrvm
 * held more pages than its budget allows.
 */
static void
sw_report(const struct sw_opts *o, bool kernel,
    double rates[SW_NCONT][SW_NPHASES][BENCH_MAX_RUNS],
    const struct sw_kstats *ks, const struct sw_result *ur,
    uint64_t upeak)
{
	char kl[16 * BENCH_MAX_RUNS], ul[16 * BENCH_MAX_RUNS];
	char kruns[16 * BENCH_MAX_RUNS + 8], km[32], ratio[32];
	uint64_t limit = o->mem / bench_pagesize + SW_PEAK_SLACK;

	for (int ph = 0; ph < SW_NPHASES; ph++) {
		double mk = bench_median(rates[SW_KERNEL][ph], o->runs);
		double mu = bench_median(rates[SW_USRVM][ph], o->runs);

		snprintf(km, sizeof(km), "n/a");
		snprintf(ratio, sizeof(ratio), "n/a");
		kruns[0] = '\0';
		if (kernel) {
			snprintf(km, sizeof(km), "%.0f", mk);
			snprintf(ratio, sizeof(ratio), "%.2f",
			    mk > 0 ? mu / mk : 0);
			snprintf(kruns, sizeof(kruns), "%c=%s ",
			    sw_cont_tag[SW_KERNEL], bench_list(
			    rates[SW_KERNEL][ph], o->runs, kl, sizeof(kl)));
		}
		printf("swap %-9s kernel %9s pages/s  usrvm %9.0f pages/s  "
		    "ratio=%s  (median of %u; runs: %s%c=%s)\n",
		    sw_phase_name[ph], km, mu, ratio, o->runs, kruns,
		    sw_cont_tag[SW_USRVM], bench_list(rates[SW_USRVM][ph],
		    o->runs, ul, sizeof(ul)));
	}
	if (kernel)
		printf("swap kernel-stats (last run): pageouts=%" PRIu64
		    " pageins=%" PRIu64 " (system-wide) peak_mib=%" PRIu64
		    " (cgroup)\n", ks->pswpout, ks->pswpin, ks->peak >> 20);
	printf("swap usrvm-stats (last run): pageouts=%" PRIu64 " pageins=%"
	    PRIu64 " resident_peak_mib=%" PRIu64 " (%" PRIu64 " pages)\n",
	    ur->pageouts, ur->pageins,
	    ur->resident_peak * bench_pagesize >> 20, ur->resident_peak);
	if (upeak > limit)
		printf("swap WARNING: usrvm resident_peak=%" PRIu64 " pages "
		    "(highest of the runs) passes the budget of %zu pages by "
		    "more than %d: mem_limit was not enforced\n", upeak,
		    o->mem / bench_pagesize, SW_PEAK_SLACK);
}

/*
 * sw_options: parse the options into *o.
 * => -1 (go on), or the exit status (--help: 0, usage: 2).
 */
static int
sw_options(int argc, char **argv, struct sw_opts *o)
{
	static const struct option longopts[] = {
		{ "size",	required_argument, NULL, 's' },
		{ "mem",	required_argument, NULL, 'm' },
		{ "reads",	required_argument, NULL, 'n' },
		{ "threads",	required_argument, NULL, 't' },
		{ "runs",	required_argument, NULL, 'r' },
		{ "seed",	required_argument, NULL, 'S' },
		{ "swap-dir",	required_argument, NULL, 'd' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ NULL,		0,		   NULL, 0 }
	};
	unsigned long long v;
	struct stat sb;
	long physpages = sysconf(_SC_PHYS_PAGES);
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
		case 't':
			if (bench_opt_uint(o->prog, "--threads", optarg, 1,
			    SW_MAX_THREADS, &v) != 0)
				return 2;
			o->threads = (unsigned)v;
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
			o->swap_dir = optarg;
			break;
		case 'h':
			sw_usage(stdout);
			return 0;
		default:
			sw_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", o->prog,
		    argv[optind]);
		sw_usage(stderr);
		return 2;
	}
	/* Below that, the kernel's child pages its own code and stack. */
	if (o->mem < SW_MIN_MEM) {
		fprintf(stderr, "%s: --mem: at least 16M\n", o->prog);
		return 2;
	}
	if (physpages > 0 && o->mem / bench_pagesize >= (size_t)physpages) {
		fprintf(stderr, "%s: --mem: not below physical memory (%zu "
		    "MiB): nothing would page\n", o->prog,
		    (size_t)physpages * bench_pagesize >> 20);
		return 2;
	}
	if (o->reads < o->threads) {
		fprintf(stderr, "%s: --reads %lu: fewer than --threads %u\n",
		    o->prog, o->reads, o->threads);
		return 2;
	}
	if (stat(o->swap_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "%s: --swap-dir %s: not a directory\n",
		    o->prog, o->swap_dir);
		return 2;
	}
	o->npages = o->size / bench_pagesize;
	return -1;
}

/*
 * sw_report_cost: for each phase, how many CPUs each contender kept busy
 * (CPU seconds of the whole process a second: on a machine of n CPUs,
 * near n means it ran out of them), and how many pages usrvm's swap
 * reads brought in at a time (last run).
 */
static void
sw_report_cost(const struct sw_opts *o, bool kernel,
    double busy[SW_NCONT][SW_NPHASES][BENCH_MAX_RUNS],
    const struct sw_result *ur)
{
	for (int ph = 0; ph < SW_NPHASES; ph++) {
		const struct sw_cost *c = &ur->cost[ph];
		char km[32] = "n/a";

		if (kernel)
			snprintf(km, sizeof(km), "%.2f",
			    bench_median(busy[SW_KERNEL][ph], o->runs));
		printf("swap %-9s CPUs busy: kernel %s usrvm %.2f (median); "
		    "usrvm swap reads %" PRIu64 " of %.1f pages each (last "
		    "run)\n", sw_phase_name[ph], km,
		    bench_median(busy[SW_USRVM][ph], o->runs), c->reads,
		    c->reads > 0 ? (double)c->pageins / (double)c->reads : 0);
	}
}

/*
 * sw_main: the swap case: the kernel's setting, the interleaved runs,
 * the report, the cleanup.
 * => 0, 1 (a run failed) or 2 (usage).
 */
int
sw_main(int argc, char **argv)
{
	static double rates[SW_NCONT][SW_NPHASES][BENCH_MAX_RUNS];
	static double busy[SW_NCONT][SW_NPHASES][BENCH_MAX_RUNS];
	struct sw_opts o = {
		.size = (size_t)1 << 30, .mem = (size_t)256 << 20,
		.reads = SW_DEF_READS, .threads = SW_DEF_THREADS,
		.runs = SW_DEF_RUNS, .seed = BENCH_DEF_SEED,
		.swap_dir = "/var/tmp", .prog = argv[0],
	};
	struct sw_result res, ulast;
	struct sw_kstats ks;
	struct usrvm_config cfg;
	char sz[32], mem[32], extra[PATH_MAX + 256];
	uint64_t upeak = 0;
	bool kernel;
	int status;

	memset(&ks, 0, sizeof(ks));
	memset(&ulast, 0, sizeof(ulast));

	if ((status = sw_options(argc, argv, &o)) >= 0)
		return status;
	if (bench_config_for(o.prog, o.size, &cfg) != 0)
		return 2;

	snprintf(extra, sizeof(extra), "size=%s (%zu pages of %zu B) mem=%s "
	    "reads=%lu threads=%u runs=%u seed=%#llx swap-dir=%s",
	    bench_size_str(o.size, sz, sizeof(sz)), o.npages, bench_pagesize,
	    bench_size_str(o.mem, mem, sizeof(mem)), o.reads, o.threads,
	    o.runs, (unsigned long long)o.seed, o.swap_dir);
	bench_header("swap", &cfg, extra);
	kernel = sw_kernel_setup(&o) == 0;
	printf("swap contenders: kernel=%s%s usrvm=child with mem_limit=%s, "
	    "swap in %s (default size), usrvm_map(PRIVATE|ANON); phases: "
	    "write (sequential), random, reread (sequential), random-mt "
	    "(%u threads), each timed whole, every read verified; runs "
	    "interleaved %s\n", kernel ? sw_kernel_describe(&o, extra,
	    sizeof(extra)) : "skipped", kernel ? ", mmap(PRIVATE|ANONYMOUS)+"
	    "MADV_NOHUGEPAGE" : "", mem, o.swap_dir, o.threads,
	    kernel ? "k,u,k,u,..." : "u,u,...");

	for (unsigned r = 0; r < o.runs; r++) {
		for (int c = kernel ? SW_KERNEL : SW_USRVM; c < SW_NCONT;
		    c++) {
			if (sw_run(&o, c, r, &res, &ks) != 0)
				goto fail;
			for (int ph = 0; ph < SW_NPHASES; ph++) {
				double secs = res.cost[ph].secs;
				rates[c][ph][r] = secs > 0 ?
				    (double)sw_phase_pages(&o, ph) / secs : 0;
				busy[c][ph][r] = secs > 0 ?
				    res.cost[ph].cpu / secs : 0;
			}
			if (c == SW_USRVM) {
				ulast = res;
				if (res.resident_peak > upeak)
					upeak = res.resident_peak;
			}
		}
	}
	sb_cleanup();
	sw_report(&o, kernel, rates, &ks, &ulast, upeak);
	sw_report_cost(&o, kernel, busy, &ulast);
	fflush(stdout);
	return 0;

fail:
	sb_cleanup();
	fflush(stdout);
	fprintf(stderr, "%s: FAILED\n", o.prog);
	return 1;
}
