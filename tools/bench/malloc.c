/*
 * malloc.c: the malloc case of usrvm-bench: unmodified allocation-heavy
 * programs on glibc's malloc, jemalloc, mimalloc and libusrvm-preload.so.
 *
 * Two parts:
 *
 *	speed	every workload under every allocator, a child process per
 *		run, interleaved (glibc, jemalloc, mimalloc, usrvm, glibc...),
 *		timed from fork to exit; reported by the median of each and
 *		its ratio to glibc's.  jemalloc and mimalloc are Debian's
 *		shared libraries put in with LD_PRELOAD, and so is usrvm's,
 *		with a budget (USRVM_MEM) well above the working set: 4 x
 *		glibc's peak RSS, at least 256 MiB.  An allocator whose
 *		library is missing is skipped, and one line says so.
 *	budget	every workload with a memory budget of half its peak RSS
 *		under glibc (wait4's ru_maxrss): under usrvm-run --mem HALF,
 *		and on glibc's malloc under RLIMIT_AS = HALF (ulimit -v);
 *		reported by what became of each run.  Smaller sizes than the
 *		speed part's by default (each workload's budget_scale): with
 *		half its memory, a program's run is bounded by swap I/O.
 *
 * The workloads are the four programs of malloc_*.c (built next to
 * usrvm-bench) and three Debian programs: python3 (PYTHONMALLOC=malloc,
 * so that every object is a malloc), sqlite3 (an in-memory table) and
 * sort (a generated file).  An untimed glibc run of each comes first:
 * its output (a hash of the bytes on stdout) is what every other run
 * must print, and its peak RSS sizes usrvm's budget.  A run that crashes,
 * times out, or prints something else is reported with the last line
 * the program wrote on stderr, and makes the exit status 1.  Under
 * usrvm, the runtime's "usrvm: started" line (USRVM_VERBOSE=1) must
 * appear, and no word from the preload that it could not start: that
 * proves the heap was usrvm's.  The preload's summary at exit
 * (USRVM_STATS) gives the paging counts, except for programs that close
 * stderr before it (sort).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MW_DEF_TIMEOUT		300	/* seconds a run may take */
#define MW_DEF_SCALE		100	/* percent of the default sizes */
#define MW_SPEED_MIN_MEM	((size_t)256 << 20)
#define MW_SPEED_MEM_FACTOR	4
#define MW_ERRLEN		160
#define MW_MAXARGS		12

enum mw_alloc { MW_GLIBC, MW_JEMALLOC, MW_MIMALLOC, MW_USRVM, MW_NALLOC };

static const char *const mw_alloc_name[MW_NALLOC] = {
	"glibc", "jemalloc", "mimalloc", "usrvm"
};

/* Debian's libraries, and the package of each. */
static const char *const mw_alloc_file[MW_NALLOC] = {
	NULL, "libjemalloc.so.2", "libmimalloc.so.2", NULL
};
static const char *const mw_alloc_pkg[MW_NALLOC] = {
	NULL, "libjemalloc2", "libmimalloc2.0", NULL
};
static const char *const mw_libdirs[] = {
	"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/usr/lib/riscv64-linux-gnu", "/usr/lib64", "/usr/lib",
	"/usr/local/lib",
};

enum mw_work {
	MW_TREES, MW_CHURN, MW_REALLOC, MW_XTHREAD, MW_FORK, MW_PYTHON,
	MW_SQLITE, MW_SORT, MW_NWORK
};

struct mw_workload {
	const char *name;
	const char *prog;	/* ours: usrvm-bench-NAME; else its path */
	const char *pkg;	/* Debian package of prog, or NULL: ours */
	unsigned threads;	/* application threads */
	/* Percent of --scale the budget part runs at: under a budget,
	 * usrvm's run is bounded by swap I/O. */
	unsigned budget_scale;
	const char *what;
};

static const struct mw_workload mw_work[MW_NWORK] = {
	[MW_TREES] = { "trees", NULL, NULL, 1, 100,
	    "binary trees: 24-byte nodes, built, checked and freed in tree "
	    "order" },
	[MW_CHURN] = { "churn", NULL, NULL, 1, 5,
	    "larson-style: 200,000 live blocks of 16 B-8 KiB, each step "
	    "frees a random one and allocates another" },
	[MW_REALLOC] = { "realloc", NULL, NULL, 1, 25,
	    "256 buffers grown in turn by 16-256 byte appends to up to "
	    "1 MiB; half realloc to the exact length, half by 1.5x" },
	[MW_XTHREAD] = { "xthread", NULL, NULL, 4, 10,
	    "2 producers hand batches of 256 blocks of 16-512 B to 2 "
	    "consumers, which free them (every free cross-thread)" },
	[MW_FORK] = { "fork", NULL, NULL, 1, 50,
	    "a heap of blocks of 8 B-64 KiB that 4 fork(2) children, one "
	    "after another, check, partly reallocate and rewrite" },
	[MW_PYTHON] = { "python", "/usr/bin/python3", "python3-minimal", 1,
	    25,
	    "PYTHONMALLOC=malloc python3 -c: a dict of tuples, strings and "
	    "lists, sorted, then a list of strings" },
	[MW_SQLITE] = { "sqlite", "/usr/bin/sqlite3", "sqlite3", 1, 25,
	    "sqlite3 :memory:: a table filled by a recursive CTE, an index, "
	    "aggregates, a delete" },
	[MW_SORT] = { "sort", "/usr/bin/sort", "coreutils", 1, 25,
	    "LC_ALL=C sort --parallel=1 of a generated file of random "
	    "lines" },
};

static const char mw_python_src[] =
    "import sys\n"
    "n = int(sys.argv[1])\n"
    "d = {}\n"
    "for i in range(n):\n"
    "    k = 'k%d' % i\n"
    "    d[k] = (i, k * 2, [i, i + 1])\n"
    "t = 0\n"
    "for k, v in d.items():\n"
    "    t += len(v[1]) + v[2][1]\n"
    "order = sorted(d, key=lambda k: (d[k][0] * 7919) % 1000003)\n"
    "del d\n"
    "s = [str(i) * (i % 7) for i in range(n)]\n"
    "print(t, order[0], order[-1], sum(map(len, s)))\n";

static const char mw_sqlite_fmt[] =
    "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT);"
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    "WHERE x < %lu) INSERT INTO t SELECT x, "
    "printf('%%08x', (x * 2654435761) %% 4294967296), "
    "printf('%%.*c', x %% 200, 'v') FROM c;"
    "CREATE INDEX tk ON t(k);"
    "SELECT count(*), sum(length(v)), min(k), max(k) FROM t;"
    "SELECT substr(k, 1, 1) AS p, count(*), sum(length(v)) FROM t "
    "GROUP BY p ORDER BY p;"
    "DELETE FROM t WHERE id %% 3 = 0;"
    "SELECT count(*) FROM t WHERE k > '80000000';";

/* A command line and the environment it adds. */
struct mw_cmd {
	char *argv[MW_MAXARGS];
	const char *env[4];		/* "NAME=VALUE" */
	char arg[4][64];
	char *script;			/* sqlite's SQL */
};

struct mw_opts {
	unsigned runs, budget_runs, timeout, scale;
	bool speed, budget;
	bool want_alloc[MW_NALLOC];
	bool want_work[MW_NWORK];
	const char *tmp_dir;
	const char *prog;
	char alloc_path[MW_NALLOC][PATH_MAX];	/* "": skipped */
	char run_path[PATH_MAX];		/* usrvm-run */
	char self_dir[PATH_MAX];
	char sort_input[PATH_MAX];
	unsigned sort_scale;			/* of the file's content */
	unsigned budget_scale;			/* 0: each workload's own */
};

/* How a run is made. */
struct mw_how {
	enum mw_alloc alloc;
	size_t usrvm_mem;	/* USRVM_MEM of an LD_PRELOAD usrvm run */
	bool via_run;		/* usrvm-run --mem usrvm_mem, --stats */
	size_t rlimit_as;	/* 0: none */
};

/* What became of a run. */
struct mw_result {
	double secs;
	long maxrss_kb;
	int status;		/* wait status */
	bool timed_out;
	uint64_t hash, nout;
	double cpu;		/* user + system time, its threads' */
	bool started;		/* usrvm said it started (USRVM_VERBOSE=1) */
	bool refused;		/* the preload said it could not start */
	bool stats;		/* usrvm's summary was printed */
	uint64_t pageins, pageouts, resident_peak;
	char err[MW_ERRLEN];	/* its last line on stderr not usrvm's */
};

/* The run going on (pid) and the sort input, for a signal's cleanup. */
static volatile pid_t mw_child;
static char *mw_cleanup_file;

/* ------------------------------------------------------------------ */
/* setting up                                                          */
/* ------------------------------------------------------------------ */

static void
mw_usage(FILE *f)
{
	fprintf(f,
	    "usage: %s malloc [options]\n"
	    "  Time allocation-heavy programs (ours and Debian's) on glibc's\n"
	    "  malloc, jemalloc, mimalloc and libusrvm-preload.so (budget 4 x\n"
	    "  glibc's peak, at least 256M), a child process per run,\n"
	    "  interleaved; then run each with a budget of half glibc's peak\n"
	    "  RSS: under usrvm-run --mem, and on glibc under RLIMIT_AS "
	    "(ulimit -v).\n"
	    "options:\n"
	    "  --workloads LIST  comma-separated subset of: trees, churn, "
	    "realloc,\n"
	    "                    xthread, fork, python, sqlite, sort "
	    "(default: all)\n"
	    "  --allocators LIST comma-separated subset of: glibc, jemalloc,"
	    "\n"
	    "                    mimalloc, usrvm (default: all; glibc always "
	    "runs,\n"
	    "                    as the reference)\n"
	    "  --part PART       speed, budget or all (default all)\n"
	    "  --runs N          timed runs of each allocator (default %d)\n"
	    "  --budget-runs N   runs of each contender of the budget part "
	    "(default 1)\n"
	    "  --scale PCT       workload sizes, percent of the defaults "
	    "(default %d)\n"
	    "  --budget-scale PCT  sizes of the budget part (default: a "
	    "fraction of\n"
	    "                    --scale per workload, as under a budget "
	    "usrvm's run\n"
	    "                    is bounded by swap I/O: trees 100%%, churn "
	    "5%%,\n"
	    "                    xthread 10%%, fork 50%%, the others "
	    "25%%)\n"
	    "  --timeout SECS    a run taking longer is killed and failed "
	    "(default %d)\n"
	    "  --tmp-dir DIR     sort's input file and usrvm's swap "
	    "(default /var/tmp)\n"
	    "  --jemalloc PATH   the library (default: Debian's "
	    "libjemalloc.so.2)\n"
	    "  --mimalloc PATH   the library (default: Debian's "
	    "libmimalloc.so.2)\n"
	    "  --help            this text\n"
	    "missing allocators are skipped: apt-get install libjemalloc2 "
	    "libmimalloc2.0\n"
	    "environment (usrvm's runs): USRVM_FAULT_THREADS, USRVM_RESERVE, "
	    "USRVM_VERBOSE\n",
	    BENCH_PROG, BENCH_DEF_RUNS, MW_DEF_SCALE, MW_DEF_TIMEOUT);
}

/*
 * mw_pick: the names of LIST ("a,b") into want[] (names[] has n).
 * => 0, or -1 (an unknown name; said).
 */
static int
mw_pick(const char *prog, const char *opt, const char *list,
    const char *(*name)(unsigned), unsigned n, bool *want)
{
	char *copy = strdup(list), *tok, *save = NULL;
	int rv = 0;

	if (copy == NULL)
		return -1;
	memset(want, 0, n * sizeof(*want));
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		unsigned i;

		for (i = 0; i < n && strcmp(tok, name(i)) != 0; i++)
			;
		if (i == n) {
			fprintf(stderr, "%s: %s: unknown name '%s'\n", prog,
			    opt, tok);
			rv = -1;
			break;
		}
		want[i] = true;
	}
	free(copy);
	return rv;
}

static const char *mw_alloc_str(unsigned i) { return mw_alloc_name[i]; }
static const char *mw_work_str(unsigned i) { return mw_work[i].name; }

/*
 * mw_find_lib: Debian's library `file` in the usual directories.
 * => 0 with out its path, or -1.
 */
static int
mw_find_lib(const char *file, char *out, size_t len)
{
	for (size_t i = 0; i < sizeof(mw_libdirs) / sizeof(*mw_libdirs); i++) {
		snprintf(out, len, "%s/%s", mw_libdirs[i], file);
		if (access(out, R_OK) == 0)
			return 0;
	}
	out[0] = '\0';
	return -1;
}

/*
 * mw_find_preload: libusrvm-preload.so as usrvm-run finds it: from
 * USRVM_PRELOAD, else in the build tree (../) or an install (../lib/).
 */
static int
mw_find_preload(const struct mw_opts *o, char *out, size_t len)
{
	const char *env = getenv("USRVM_PRELOAD");
	const char *rel[] = { "/../libusrvm-preload.so",
	    "/../lib/libusrvm-preload.so", "/libusrvm-preload.so" };

	if (env != NULL && env[0] != '\0') {
		snprintf(out, len, "%s", env);
		return access(out, R_OK);
	}
	for (size_t i = 0; i < sizeof(rel) / sizeof(*rel); i++) {
		snprintf(out, len, "%s%s", o->self_dir, rel[i]);
		if (access(out, R_OK) == 0)
			return 0;
	}
	out[0] = '\0';
	return -1;
}

/*
 * mw_options: parse the options into *o.
 * => -1 (go on), or the exit status (--help: 0, usage: 2).
 */
static int
mw_options(int argc, char **argv, struct mw_opts *o)
{
	static const struct option longopts[] = {
		{ "workloads",	 required_argument, NULL, 'w' },
		{ "allocators",	 required_argument, NULL, 'a' },
		{ "part",	 required_argument, NULL, 'p' },
		{ "runs",	 required_argument, NULL, 'r' },
		{ "budget-runs", required_argument, NULL, 'b' },
		{ "scale",	 required_argument, NULL, 's' },
		{ "budget-scale", required_argument, NULL, 'B' },
		{ "timeout",	 required_argument, NULL, 'T' },
		{ "tmp-dir",	 required_argument, NULL, 'd' },
		{ "jemalloc",	 required_argument, NULL, 'j' },
		{ "mimalloc",	 required_argument, NULL, 'M' },
		{ "help",	 no_argument,	    NULL, 'h' },
		{ NULL,		 0,		    NULL, 0 }
	};
	unsigned long long v;
	struct stat sb;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			if (mw_pick(o->prog, "--workloads", optarg,
			    mw_work_str, MW_NWORK, o->want_work) != 0)
				return 2;
			break;
		case 'a':
			if (mw_pick(o->prog, "--allocators", optarg,
			    mw_alloc_str, MW_NALLOC, o->want_alloc) != 0)
				return 2;
			break;
		case 'p':
			if (strcmp(optarg, "speed") == 0) {
				o->speed = true;
				o->budget = false;
			} else if (strcmp(optarg, "budget") == 0) {
				o->speed = false;
				o->budget = true;
			} else if (strcmp(optarg, "all") == 0) {
				o->speed = o->budget = true;
			} else {
				fprintf(stderr, "%s: --part '%s': expected "
				    "speed, budget or all\n", o->prog, optarg);
				return 2;
			}
			break;
		case 'r':
			if (bench_opt_runs(o->prog, "--runs", optarg,
			    &o->runs) != 0)
				return 2;
			break;
		case 'b':
			if (bench_opt_runs(o->prog, "--budget-runs", optarg,
			    &o->budget_runs) != 0)
				return 2;
			break;
		case 's':
			if (bench_opt_uint(o->prog, "--scale", optarg, 1,
			    1000, &v) != 0)
				return 2;
			o->scale = (unsigned)v;
			break;
		case 'B':
			if (bench_opt_uint(o->prog, "--budget-scale", optarg,
			    1, 1000, &v) != 0)
				return 2;
			o->budget_scale = (unsigned)v;
			break;
		case 'T':
			if (bench_opt_uint(o->prog, "--timeout", optarg, 1,
			    86400, &v) != 0)
				return 2;
			o->timeout = (unsigned)v;
			break;
		case 'd':
			o->tmp_dir = optarg;
			break;
		case 'j':
			snprintf(o->alloc_path[MW_JEMALLOC], PATH_MAX, "%s",
			    optarg);
			break;
		case 'M':
			snprintf(o->alloc_path[MW_MIMALLOC], PATH_MAX, "%s",
			    optarg);
			break;
		case 'h':
			mw_usage(stdout);
			return 0;
		default:
			mw_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", o->prog,
		    argv[optind]);
		mw_usage(stderr);
		return 2;
	}
	if (stat(o->tmp_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "%s: --tmp-dir %s: not a directory\n",
		    o->prog, o->tmp_dir);
		return 2;
	}
	/* glibc is the reference: always run. */
	o->want_alloc[MW_GLIBC] = true;
	return -1;
}

/*
 * mw_locate: the allocators' libraries and the programs; each one
 * missing is said on one line and skipped.
 * => 0, or -1 (no workload left, or usrvm-bench's own directory unknown).
 */
static int
mw_locate(struct mw_opts *o)
{
	char self[PATH_MAX], path[PATH_MAX];
	ssize_t n;
	int left = 0;

	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) < 0) {
		fprintf(stderr, "%s: /proc/self/exe: %s\n", o->prog,
		    strerror(errno));
		return -1;
	}
	self[n] = '\0';
	snprintf(o->self_dir, sizeof(o->self_dir), "%s", dirname(self));
	if (snprintf(o->run_path, sizeof(o->run_path), "%s/usrvm-run",
	    o->self_dir) >= (int)sizeof(o->run_path)) {
		fprintf(stderr, "%s: %s: path too long\n", o->prog,
		    o->self_dir);
		return -1;
	}

	for (int a = MW_JEMALLOC; a <= MW_MIMALLOC; a++) {
		if (!o->want_alloc[a])
			continue;
		if (o->alloc_path[a][0] != '\0') {
			if (access(o->alloc_path[a], R_OK) != 0) {
				printf("malloc %s: skipped: %s: %s\n",
				    mw_alloc_name[a], o->alloc_path[a],
				    strerror(errno));
				o->want_alloc[a] = false;
			}
		} else if (mw_find_lib(mw_alloc_file[a], o->alloc_path[a],
		    PATH_MAX) != 0) {
			printf("malloc %s: skipped: %s not found in the "
			    "system's library directories (apt-get install "
			    "%s)\n", mw_alloc_name[a], mw_alloc_file[a],
			    mw_alloc_pkg[a]);
			o->want_alloc[a] = false;
		}
	}
	if (o->want_alloc[MW_USRVM] || o->budget) {
		if (mw_find_preload(o, o->alloc_path[MW_USRVM], PATH_MAX) != 0) {
			printf("malloc usrvm: skipped: libusrvm-preload.so not "
			    "found next to %s/ (not built with the sanitizers; "
			    "set USRVM_PRELOAD to its path)\n", o->self_dir);
			o->want_alloc[MW_USRVM] = false;
			o->budget = false;
		} else if (o->budget && access(o->run_path, X_OK) != 0) {
			printf("malloc budget: skipped: %s: %s\n", o->run_path,
			    strerror(errno));
			o->budget = false;
		}
	}

	for (int w = 0; w < MW_NWORK; w++) {
		const struct mw_workload *wl = &mw_work[w];

		if (!o->want_work[w])
			continue;
		if ((wl->prog == NULL ? snprintf(path, sizeof(path),
		    "%s/usrvm-bench-%s", o->self_dir, wl->name) :
		    snprintf(path, sizeof(path), "%s", wl->prog)) >=
		    (int)sizeof(path))
			errno = ENAMETOOLONG;
		else if (access(path, X_OK) == 0)
			errno = 0;
		if (errno != 0) {
			if (wl->pkg != NULL)
				printf("malloc %s: skipped: %s not found "
				    "(apt-get install %s)\n", wl->name, path,
				    wl->pkg);
			else
				printf("malloc %s: skipped: %s: %s (built "
				    "with usrvm-bench)\n", wl->name, path,
				    strerror(errno));
			o->want_work[w] = false;
			continue;
		}
		left++;
	}
	if (left == 0) {
		fprintf(stderr, "%s: no workload to run\n", o->prog);
		return -1;
	}
	return 0;
}

/*
 * mw_sort_input: sort's input at `scale`, 10,000 x scale lines of 1 to
 * 40 random lowercase letters from a fixed seed, in a file of --tmp-dir
 * (made once, rewritten when the scale changes).
 * => 0, or -1 (said).
 */
static int
mw_sort_input(struct mw_opts *o, unsigned scale)
{
	unsigned long lines = 10000UL * scale;
	uint64_t x = BENCH_DEF_SEED;
	char line[48];
	FILE *f;
	int fd;

	if (o->sort_scale == scale)
		return 0;
	if (o->sort_input[0] == '\0') {
		snprintf(o->sort_input, sizeof(o->sort_input),
		    "%s/usrvm-bench-sort.XXXXXX", o->tmp_dir);
		if ((fd = mkstemp(o->sort_input)) < 0) {
			fprintf(stderr, "%s: %s: %s\n", o->prog,
			    o->sort_input, strerror(errno));
			o->sort_input[0] = '\0';
			return -1;
		}
		mw_cleanup_file = o->sort_input;
	} else if ((fd = open(o->sort_input, O_WRONLY | O_TRUNC)) < 0) {
		fprintf(stderr, "%s: %s: %s\n", o->prog, o->sort_input,
		    strerror(errno));
		return -1;
	}
	o->sort_scale = 0;
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return -1;
	}
	for (unsigned long i = 0; i < lines; i++) {
		uint64_t r = bench_mix64(x++);
		unsigned len = 1 + (unsigned)(r % 40);

		for (unsigned c = 0; c < len; c++) {
			if (c % 12 == 0)
				r = bench_mix64(x++);
			line[c] = (char)('a' + (r & 31) % 26);
			r >>= 5;
		}
		line[len] = '\n';
		fwrite(line, 1, len + 1, f);
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "%s: %s: %s\n", o->prog, o->sort_input,
		    strerror(errno));
		return -1;
	}
	o->sort_scale = scale;
	return 0;
}

/*
 * mw_command: the command line of workload w at `scale`, percent of the
 * default sizes.
 * => 0, or -1 (sort's input could not be written; said).
 */
static int
mw_command(struct mw_opts *o, enum mw_work w, unsigned scale,
    struct mw_cmd *c)
{
	static char path[MW_NWORK][PATH_MAX];
	unsigned long s = scale;
	int i = 0, depth;

	memset(c->argv, 0, sizeof(c->argv));
	memset(c->env, 0, sizeof(c->env));
	/* mw_locate has checked the length. */
	if (mw_work[w].prog != NULL)
		snprintf(path[w], PATH_MAX, "%s", mw_work[w].prog);
	else if (snprintf(path[w], PATH_MAX, "%s/usrvm-bench-%s",
	    o->self_dir, mw_work[w].name) >= PATH_MAX)
		path[w][0] = '\0';
	c->argv[i++] = path[w];
	switch (w) {
	case MW_TREES:
		/* A depth more doubles the work. */
		depth = 17 + (int)floor(log2((double)s / 100));
		snprintf(c->arg[0], 64, "%d", depth < 6 ? 6 :
		    depth > 26 ? 26 : depth);
		c->argv[i++] = c->arg[0];
		break;
	case MW_CHURN:
		snprintf(c->arg[0], 64, "%d", 200000);
		snprintf(c->arg[1], 64, "%lu", 30000UL * s);
		c->argv[i++] = c->arg[0];
		c->argv[i++] = c->arg[1];
		break;
	case MW_REALLOC:
		snprintf(c->arg[0], 64, "%d", 256);
		snprintf(c->arg[1], 64, "%lu", (8 * s + 99) / 100);
		snprintf(c->arg[2], 64, "%d", 1024);
		c->argv[i++] = c->arg[0];
		c->argv[i++] = c->arg[1];
		c->argv[i++] = c->arg[2];
		break;
	case MW_XTHREAD:
		snprintf(c->arg[0], 64, "%d", 2);
		snprintf(c->arg[1], 64, "%lu", 250UL * s);
		c->argv[i++] = c->arg[0];
		c->argv[i++] = c->arg[1];
		break;
	case MW_FORK:
		snprintf(c->arg[0], 64, "%lu", (64 * s + 99) / 100);
		snprintf(c->arg[1], 64, "%d", 4);
		c->argv[i++] = c->arg[0];
		c->argv[i++] = c->arg[1];
		break;
	case MW_PYTHON:
		c->argv[i++] = "-c";
		c->argv[i++] = (char *)mw_python_src;
		snprintf(c->arg[0], 64, "%lu", 2000UL * s);
		c->argv[i++] = c->arg[0];
		c->env[0] = "PYTHONMALLOC=malloc";
		break;
	case MW_SQLITE:
		free(c->script);
		if (asprintf(&c->script, mw_sqlite_fmt, 3000UL * s) < 0)
			c->script = NULL;
		c->argv[i++] = ":memory:";
		c->argv[i++] = c->script != NULL ? c->script : "";
		break;
	case MW_SORT:
		if (mw_sort_input(o, scale) != 0)
			return -1;
		c->argv[i++] = "--parallel=1";
		c->argv[i++] = (char *)o->sort_input;
		c->env[0] = "LC_ALL=C";
		break;
	default:
		break;
	}
	return 0;
}

/* "prog args" for the reader, the long ones cut. */
static const char *
mw_cmd_str(const struct mw_cmd *c, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; c->env[i] != NULL && off < len; i++)
		off += snprintf(buf + off, len - off, "%s ", c->env[i]);
	for (int i = 0; c->argv[i] != NULL && off < len; i++) {
		const char *a = c->argv[i];
		bool longarg = i > 0 && (strlen(a) > 40 ||
		    strchr(a, '\n') != NULL);

		off += snprintf(buf + off, len - off, "%s%s", i ? " " : "",
		    longarg ? "'...'" : a);
	}
	return buf;
}

/* ------------------------------------------------------------------ */
/* one run                                                             */
/* ------------------------------------------------------------------ */

static void
mw_signal(int sig)
{
	pid_t pid = mw_child;

	if (pid > 0)
		kill(-pid, SIGKILL);
	if (mw_cleanup_file != NULL)
		unlink(mw_cleanup_file);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * mw_child_exec: in the child: its output to the pipe and the memfd, the
 * allocator's environment, the limit, then exec.
 */
static void __attribute__((noreturn))
mw_child_exec(const struct mw_opts *o, const struct mw_cmd *c,
    const struct mw_how *h, int out, int err)
{
	char mem[32], pid[32], *argv[MW_MAXARGS + 10];
	int n = 0, devnull;

	setpgid(0, 0);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if ((devnull = open("/dev/null", O_RDONLY)) >= 0)
		dup2(devnull, STDIN_FILENO);
	dup2(out, STDOUT_FILENO);
	dup2(err, STDERR_FILENO);

	unsetenv("LD_PRELOAD");
	unsetenv("USRVM_MEM");
	unsetenv("USRVM_STATS");
	/* Its line "usrvm: started" says the runtime is there, even for a
	 * program that closes stderr before usrvm's summary at exit. */
	if (getenv("USRVM_VERBOSE") == NULL ||
	    strcmp(getenv("USRVM_VERBOSE"), "0") == 0)
		setenv("USRVM_VERBOSE", "1", 1);
	for (int i = 0; c->env[i] != NULL; i++)
		putenv((char *)c->env[i]);
	snprintf(mem, sizeof(mem), "%zuK", h->usrvm_mem >> 10);
	if (h->via_run) {
		argv[n++] = (char *)o->run_path;
		argv[n++] = "--mem";
		argv[n++] = mem;
		argv[n++] = "--swap";
		argv[n++] = (char *)o->tmp_dir;
		argv[n++] = "--stats";
		argv[n++] = "--";
		setenv("USRVM_PRELOAD", o->alloc_path[MW_USRVM], 1);
	} else if (h->alloc != MW_GLIBC) {
		setenv("LD_PRELOAD", o->alloc_path[h->alloc], 1);
	}
	if (h->alloc == MW_USRVM && !h->via_run) {
		setenv("USRVM_MEM", mem, 1);
		setenv("USRVM_SWAP", o->tmp_dir, 1);
		snprintf(pid, sizeof(pid), "%ld", (long)getpid());
		setenv("USRVM_STATS", pid, 1);
	}
	for (int i = 0; c->argv[i] != NULL; i++)
		argv[n++] = c->argv[i];
	argv[n] = NULL;
	if (h->rlimit_as != 0) {
		struct rlimit rl = { h->rlimit_as, h->rlimit_as };

		if (setrlimit(RLIMIT_AS, &rl) != 0) {
			fprintf(stderr, "setrlimit(RLIMIT_AS): %s\n",
			    strerror(errno));
			_exit(126);
		}
	}
	execv(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Is this stderr line a line of usrvm's summary at exit? */
static bool
mw_summary_line(const char *l)
{
	static const char *const words[] = {
		"faults ", "pages filled ", "resident ", "budget ",
		"page-ins ", "page daemon: ", "faults parked ",
		"application events: ", "fault service time ",
	};

	if (strncmp(l, "usrvm: ", 7) != 0)
		return false;
	if (strncmp(l + 7, "started: ", 9) == 0)
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
		if (strncmp(l + 7, words[i], strlen(words[i])) == 0)
			return true;
	return false;
}

/*
 * mw_stderr: what the run wrote on stderr (the memfd): usrvm's summary
 * into r's counters, the last other line into r->err.
 */
static void
mw_stderr(int fd, struct mw_result *r)
{
	char buf[65536], *line, *save = NULL;
	off_t size = lseek(fd, 0, SEEK_END), from;
	ssize_t n;
	unsigned long long a, b;

	from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 :
	    0;
	if (size <= 0 || (n = pread(fd, buf, sizeof(buf) - 1, from)) <= 0)
		return;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "preload: cannot") != NULL)
			r->refused = true;
		if (mw_summary_line(line)) {
			if (strncmp(line + 7, "started: ", 9) == 0) {
				r->started = true;
				continue;
			}
			r->stats = true;
			if (sscanf(line, "usrvm: resident %llu pages (peak "
			    "%llu)", &a, &b) == 2)
				r->resident_peak = b;
			else if (sscanf(line, "usrvm: page-ins %llu (%*u "
			    "reads), page-outs %llu", &a, &b) == 2) {
				r->pageins = a;
				r->pageouts = b;
			}
		} else if (line[strspn(line, " \t\r")] != '\0') {
			snprintf(r->err, sizeof(r->err), "%s", line);
		}
	}
}

/*
 * mw_run: one run of command c as h says, in a child; timed from fork
 * to exit, its stdout hashed, killed past --timeout.
 * => 0, or -1 (the run could not be started; said).
 */
static int
mw_run(const struct mw_opts *o, const struct mw_cmd *c,
    const struct mw_how *h, struct mw_result *r)
{
	char buf[65536];
	struct pollfd pfd[2];
	struct rusage ru;
	double t0, deadline;
	uint64_t hash = 0xcbf29ce484222325ULL;
	bool eof = false, exited = false;
	int out[2], err, pidfd, status = 0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe2(out, O_CLOEXEC) != 0 ||
	    (err = memfd_create("usrvm-bench-stderr", MFD_CLOEXEC)) < 0) {
		fprintf(stderr, "%s: pipe or memfd: %s\n", o->prog,
		    strerror(errno));
		return -1;
	}
	fflush(NULL);
	t0 = bench_now();
	deadline = t0 + o->timeout;
	if ((pid = fork()) == 0)
		mw_child_exec(o, c, h, out[1], err);
	close(out[1]);
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", o->prog, strerror(errno));
		close(out[0]);
		close(err);
		return -1;
	}
	mw_child = pid;
	setpgid(pid, pid);	/* as the child does: no race either way */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	while (!eof || (!exited && pidfd >= 0)) {
		int nfd = 0, timeout = (int)((deadline - bench_now()) * 1000);

		if (timeout <= 0) {
			kill(-pid, SIGKILL);
			r->timed_out = true;
			break;
		}
		if (!eof) {
			pfd[nfd].fd = out[0];
			pfd[nfd++].events = POLLIN;
		}
		if (!exited && pidfd >= 0) {
			pfd[nfd].fd = pidfd;
			pfd[nfd++].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)nfd, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < nfd; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (pfd[i].fd == pidfd) {
				/* Timed at exit, before wait4 and the drain. */
				r->secs = bench_now() - t0;
				exited = true;
				continue;
			}
			ssize_t n = read(out[0], buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				eof = true;
				continue;
			}
			for (ssize_t k = 0; k < n; k++) {
				hash ^= (unsigned char)buf[k];
				hash *= 0x100000001b3ULL;
			}
			r->nout += (uint64_t)n;
		}
	}
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	if (!exited || r->secs == 0)
		r->secs = bench_now() - t0;
	mw_child = 0;
	/* A grandchild left behind (usrvm-run's program) goes too. */
	kill(-pid, SIGKILL);
	if (pidfd >= 0)
		close(pidfd);
	close(out[0]);
	r->status = status;
	r->hash = hash;
	r->maxrss_kb = ru.ru_maxrss;
	r->cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
	mw_stderr(err, r);
	close(err);
	return 0;
}

/*
 * mw_outcome: what became of run r, against the reference output ref
 * (NULL: none yet).  usrvm's runs must have printed the summary.
 * => true if it completed with the right output.
 */
static bool
mw_outcome(const struct mw_result *r, const struct mw_result *ref,
    bool usrvm, char *buf, size_t len)
{
	int n;

	if (r->timed_out)
		n = snprintf(buf, len, "timed out (killed)");
	else if (WIFSIGNALED(r->status))
		n = snprintf(buf, len, "killed by signal %d (%s)",
		    WTERMSIG(r->status), strsignal(WTERMSIG(r->status)));
	else if (WEXITSTATUS(r->status) != 0)
		n = snprintf(buf, len, "exit status %d",
		    WEXITSTATUS(r->status));
	else if (ref != NULL && (r->hash != ref->hash || r->nout != ref->nout))
		n = snprintf(buf, len, "wrong output (%" PRIu64 " bytes, "
		    "hash %016" PRIx64 "; glibc: %" PRIu64 " bytes, hash %016"
		    PRIx64 ")", r->nout, r->hash, ref->nout, ref->hash);
	else if (usrvm && (!r->started || r->refused))
		n = snprintf(buf, len, "usrvm did not start (no \"usrvm: "
		    "started\" line, or the preload could not start): the "
		    "heap was glibc's");
	else {
		snprintf(buf, len, "completed");
		return true;
	}
	if (r->err[0] != '\0' && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ": \"%s\"", r->err);
	return false;
}

/* ------------------------------------------------------------------ */
/* the two parts                                                       */
/* ------------------------------------------------------------------ */

struct mw_speed {
	bool done;			/* every run completed */
	double secs[MW_NALLOC][BENCH_MAX_RUNS];
	double cpu[MW_NALLOC][BENCH_MAX_RUNS];
	long rss[MW_NALLOC][BENCH_MAX_RUNS];
	uint64_t pageouts[MW_NALLOC];	/* usrvm's, over the runs */
	unsigned ok[MW_NALLOC];		/* runs completed */
	bool failed[MW_NALLOC];
};

struct mw_budget {
	bool done;
	unsigned scale;			/* percent of the default sizes */
	double ref_secs;		/* glibc's run without a limit */
	long peak_kb;			/* glibc's peak RSS */
	size_t mem;			/* the budget, bytes */
	struct mw_result u, g;		/* usrvm's last run, glibc's */
	bool u_ok, g_ok;
	unsigned u_runs_ok, g_runs_ok;
	double u_secs[BENCH_MAX_RUNS];
	char u_out[MW_ERRLEN + 200], g_out[MW_ERRLEN + 200];
};

static const char *
mw_secs_list(const double *v, unsigned n, char *buf, size_t len)
{
	size_t off = 0;

	off += snprintf(buf, len, "[");
	for (unsigned i = 0; i < n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%.3f", i ? "," : "",
		    v[i]);
	if (off < len)
		snprintf(buf + off, len - off, "]");
	return buf;
}

static long
mw_median_long(const long *v, unsigned n)
{
	double d[BENCH_MAX_RUNS];

	for (unsigned i = 0; i < n; i++)
		d[i] = (double)v[i];
	return (long)bench_median(d, n);
}

/*
 * mw_reference: the untimed glibc run of workload w: its output is the
 * reference, its peak RSS sizes the budgets.
 * => 0, or -1 (glibc's run failed: the workload is skipped; said).
 */
static int
mw_reference(const struct mw_opts *o, enum mw_work w, const struct mw_cmd *c,
    struct mw_result *ref)
{
	struct mw_how h = { .alloc = MW_GLIBC };
	char why[MW_ERRLEN + 200];

	if (mw_run(o, c, &h, ref) != 0)
		return -1;
	if (!mw_outcome(ref, NULL, false, why, sizeof(why))) {
		printf("malloc %s: skipped: glibc's reference run: %s\n",
		    mw_work[w].name, why);
		return -1;
	}
	printf("malloc %s: reference run (glibc, untimed): %.3f s, %" PRIu64
	    " bytes of output, hash %016" PRIx64 ", peak RSS %ld KiB\n",
	    mw_work[w].name, ref->secs, ref->nout, ref->hash, ref->maxrss_kb);
	return 0;
}

/*
 * mw_speed_part: the timed runs of workload w under every allocator,
 * interleaved, and their lines.
 */
static void
mw_speed_part(const struct mw_opts *o, enum mw_work w, const struct mw_cmd *c,
    const struct mw_result *ref, long peak_kb, struct mw_speed *sp)
{
	size_t mem = (size_t)peak_kb * 1024 * MW_SPEED_MEM_FACTOR;
	char why[MW_ERRLEN + 200], list[16 * BENCH_MAX_RUNS];
	struct mw_result r;
	double gmed, gcpu;

	mem = (mem + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
	if (mem < MW_SPEED_MIN_MEM)
		mem = MW_SPEED_MIN_MEM;
	for (unsigned run = 0; run < o->runs; run++) {
		for (int a = 0; a < MW_NALLOC; a++) {
			struct mw_how h = { .alloc = a, .usrvm_mem = mem };

			if (!o->want_alloc[a])
				continue;
			if (mw_run(o, c, &h, &r) != 0 ||
			    !mw_outcome(&r, ref, a == MW_USRVM, why,
			    sizeof(why))) {
				fprintf(stderr, "%s: %s %s run %u: %s\n",
				    o->prog, mw_work[w].name, mw_alloc_name[a],
				    run + 1, why);
				printf("malloc %s %s run %u: FAILED: %s\n",
				    mw_work[w].name, mw_alloc_name[a], run + 1,
				    why);
				sp->failed[a] = true;
				continue;
			}
			sp->secs[a][sp->ok[a]] = r.secs;
			sp->cpu[a][sp->ok[a]] = r.cpu;
			sp->rss[a][sp->ok[a]] = r.maxrss_kb;
			sp->ok[a]++;
			sp->pageouts[a] += r.pageouts;
		}
	}
	sp->done = true;
	gmed = bench_median(sp->secs[MW_GLIBC], sp->ok[MW_GLIBC]);
	gcpu = bench_median(sp->cpu[MW_GLIBC], sp->ok[MW_GLIBC]);
	for (int a = 0; a < MW_NALLOC; a++) {
		double med, cpu;
		char extra[96] = "";

		if (!o->want_alloc[a] || sp->ok[a] == 0)
			continue;
		med = bench_median(sp->secs[a], sp->ok[a]);
		cpu = bench_median(sp->cpu[a], sp->ok[a]);
		if (a == MW_USRVM)
			snprintf(extra, sizeof(extra), " USRVM_MEM=%zuM "
			    "page-outs=%" PRIu64 "%s", mem >> 20,
			    sp->pageouts[a], sp->pageouts[a] != 0 ?
			    " (the budget was not above the working set)" :
			    "");
		printf("malloc %-8s %-9s %8.3f s  ratio=%.2f  cpu=%.3f s "
		    "cpu_ratio=%.2f  peak_rss=%ld KiB%s  (median of %u%s; "
		    "runs: %s)\n", mw_work[w].name, mw_alloc_name[a], med,
		    gmed > 0 ? med / gmed : 0, cpu, gcpu > 0 ? cpu / gcpu : 0,
		    mw_median_long(sp->rss[a], sp->ok[a]), extra, sp->ok[a],
		    sp->ok[a] < o->runs ? ", some FAILED" : "",
		    mw_secs_list(sp->secs[a], sp->ok[a], list, sizeof(list)));
	}
	fflush(stdout);
}

/*
 * mw_budget_part: workload w with half of glibc's peak: usrvm-run --mem,
 * and glibc under RLIMIT_AS.  ref: glibc's run at the same scale.
 */
static void
mw_budget_part(const struct mw_opts *o, enum mw_work w,
    const struct mw_cmd *c, const struct mw_result *ref, long peak_kb,
    struct mw_budget *b)
{
	char list[16 * BENCH_MAX_RUNS];
	struct mw_result r;

	b->peak_kb = peak_kb;
	b->ref_secs = ref->secs;
	b->mem = ((size_t)peak_kb * 1024 / 2) & ~(((size_t)1 << 20) - 1);
	if (b->mem < ((size_t)1 << 20))
		b->mem = (size_t)1 << 20;
	for (unsigned run = 0; run < o->budget_runs; run++) {
		struct mw_how hu = { .alloc = MW_USRVM, .usrvm_mem = b->mem,
		    .via_run = true };
		struct mw_how hg = { .alloc = MW_GLIBC, .rlimit_as = b->mem };

		if (mw_run(o, c, &hu, &r) == 0) {
			b->u = r;
			if (mw_outcome(&r, ref, true, b->u_out,
			    sizeof(b->u_out)))
				b->u_secs[b->u_runs_ok++] = r.secs;
			else
				fprintf(stderr, "%s: %s usrvm-run --mem %zuM run "
				    "%u: %s\n", o->prog, mw_work[w].name,
				    b->mem >> 20, run + 1, b->u_out);
		}
		if (mw_run(o, c, &hg, &r) == 0) {
			b->g = r;
			if (mw_outcome(&r, ref, false, b->g_out,
			    sizeof(b->g_out)))
				b->g_runs_ok++;
		}
	}
	b->u_ok = b->u_runs_ok == o->budget_runs;
	b->g_ok = b->g_runs_ok == o->budget_runs;
	b->done = true;
	printf("malloc %-8s budget=%zuM (half of glibc's peak RSS %ld KiB; "
	    "glibc unlimited: %.3f s): usrvm-run --mem %zuM: %s%s",
	    mw_work[w].name, b->mem >> 20, peak_kb, b->ref_secs,
	    b->mem >> 20, b->u_ok ? "completed" : "FAILED: ",
	    b->u_ok ? "" : b->u_out);
	if (b->u_runs_ok > 0) {
		printf(" in %.3f s (median of %u; runs: %s), peak_rss=%ld KiB",
		    bench_median(b->u_secs, b->u_runs_ok), b->u_runs_ok,
		    mw_secs_list(b->u_secs, b->u_runs_ok, list, sizeof(list)),
		    b->u.maxrss_kb);
		if (b->u.stats)
			printf(", heap resident peak %" PRIu64 " pages, "
			    "page-outs=%" PRIu64 ", page-ins=%" PRIu64
			    " (last run)", b->u.resident_peak, b->u.pageouts,
			    b->u.pageins);
		else
			printf(", paging counts n/a (the program closed "
			    "stderr before usrvm's summary at exit)");
	}
	printf("; glibc with RLIMIT_AS %zu KiB (ulimit -v): %s", b->mem >> 10,
	    b->g_ok ? "completed" : "failed: ");
	if (b->g_ok)
		printf(" in %.3f s, peak_rss=%ld KiB (last run)\n", b->g.secs,
		    b->g.maxrss_kb);
	else
		printf("%s\n", b->g_out);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* the summary                                                         */
/* ------------------------------------------------------------------ */

/*
 * mw_summary_speed: the table of the speed part, of wall-clock times
 * (cpu false) or of CPU times (user + system, every thread's).
 */
static void
mw_summary_speed(const struct mw_opts *o, const struct mw_speed *sp,
    bool cpu)
{
	const char *tag = cpu ? "malloc cpu-summary:" : "malloc summary:";
	char cell[64];

	if (cpu)
		printf("%s CPU seconds (user + system), median of %u runs; "
		    "(ratio) = CPU time / glibc's\n", tag, o->runs);
	else
		printf("%s wall-clock seconds, median of %u runs; (ratio) = "
		    "time / glibc's time, below 1 is faster; target: within "
		    "1.10 single-threaded, at most 1.00 (glibc's throughput) "
		    "multi-threaded\n", tag, o->runs);
	printf("%s %-8s %3s", tag, "workload", "thr");
	for (int a = 0; a < MW_NALLOC; a++)
		if (o->want_alloc[a])
			printf("  %-15s", mw_alloc_name[a]);
	if (!cpu)
		printf("  %-6s %s", "target", "usrvm");
	printf("\n");
	for (int w = 0; w < MW_NWORK; w++) {
		const struct mw_speed *s = &sp[w];
		double gmed, umed = 0, target = mw_work[w].threads > 1 ?
		    1.00 : 1.10;

		if (!s->done)
			continue;
		gmed = bench_median(cpu ? s->cpu[MW_GLIBC] : s->secs[MW_GLIBC],
		    s->ok[MW_GLIBC]);
		printf("%s %-8s %3u", tag, mw_work[w].name,
		    mw_work[w].threads);
		for (int a = 0; a < MW_NALLOC; a++) {
			double med;

			if (!o->want_alloc[a])
				continue;
			if (s->ok[a] == 0) {
				printf("  %-15s", "FAILED");
				continue;
			}
			med = bench_median(cpu ? s->cpu[a] : s->secs[a],
			    s->ok[a]);
			if (a == MW_USRVM)
				umed = med;
			if (a == MW_GLIBC)
				snprintf(cell, sizeof(cell), "%.3f", med);
			else
				snprintf(cell, sizeof(cell), "%.3f (%.2f)%s",
				    med, gmed > 0 ? med / gmed : 0,
				    s->failed[a] ? "!" : "");
			printf("  %-15s", cell);
		}
		if (!cpu)
			printf("  <=%.2f %s", target,
			    !o->want_alloc[MW_USRVM] ? "n/a" :
			    s->failed[MW_USRVM] || s->ok[MW_USRVM] == 0 ?
			    "FAILED" : gmed > 0 && umed / gmed <= target ?
			    "met" : "missed");
		printf("\n");
	}
}

static void
mw_summary(const struct mw_opts *o, const struct mw_speed *sp,
    const struct mw_budget *bu)
{
	bool any = false;

	for (int w = 0; w < MW_NWORK; w++)
		any |= sp[w].done;
	if (any) {
		mw_summary_speed(o, sp, false);
		mw_summary_speed(o, sp, true);
	}
	any = false;
	for (int w = 0; w < MW_NWORK; w++)
		any |= bu[w].done;
	if (!any)
		return;
	printf("malloc budget: half of glibc's peak RSS at the budget part's "
	    "scale; usrvm: usrvm-run --mem BUDGET; glibc: RLIMIT_AS = BUDGET "
	    "(ulimit -v)\n");
	printf("malloc budget: %-8s %5s %7s %7s %8s  %-42s  %s\n", "workload",
	    "scale", "peak", "budget", "glibc", "usrvm-run --mem BUDGET",
	    "glibc + ulimit -v BUDGET");
	for (int w = 0; w < MW_NWORK; w++) {
		const struct mw_budget *b = &bu[w];
		char peak[32], scale[16], ucell[128], gcell[MW_ERRLEN + 64];
		char pg[64];

		if (!b->done)
			continue;
		snprintf(peak, sizeof(peak), "%ldM", b->peak_kb >> 10);
		snprintf(scale, sizeof(scale), "%u%%", b->scale);
		if (b->u.stats)
			snprintf(pg, sizeof(pg), "%" PRIu64 " out/%" PRIu64
			    " in", b->u.pageouts, b->u.pageins);
		else
			snprintf(pg, sizeof(pg), "paging n/a");
		if (b->u_ok)
			snprintf(ucell, sizeof(ucell), "completed %.3f s, "
			    "rss %ldM, %s", bench_median(b->u_secs,
			    b->u_runs_ok), b->u.maxrss_kb >> 10, pg);
		else
			snprintf(ucell, sizeof(ucell), "FAILED");
		if (b->g_ok)
			snprintf(gcell, sizeof(gcell), "completed %.3f s, rss "
			    "%ldM", b->g.secs, b->g.maxrss_kb >> 10);
		else
			snprintf(gcell, sizeof(gcell), "failed: %s", b->g_out);
		printf("malloc budget: %-8s %5s %7s %6zuM %7.3fs  %-42s  %s\n",
		    mw_work[w].name, scale, peak, b->mem >> 20, b->ref_secs,
		    ucell, gcell);
	}
}

/* "1.23 0.98 0.75" */
static const char *
mw_loadavg(char *buf, size_t len)
{
	double l[3];

	if (getloadavg(l, 3) != 3)
		snprintf(buf, len, "unknown");
	else
		snprintf(buf, len, "%.2f %.2f %.2f", l[0], l[1], l[2]);
	return buf;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

int
mw_main(int argc, char **argv)
{
	static struct mw_speed speed[MW_NWORK];
	static struct mw_budget budget[MW_NWORK];
	struct mw_opts o = {
		.runs = BENCH_DEF_RUNS, .budget_runs = 1,
		.timeout = MW_DEF_TIMEOUT, .scale = MW_DEF_SCALE,
		.speed = true, .budget = true, .tmp_dir = "/var/tmp",
		.prog = argv[0],
	};
	struct usrvm_config cfg;
	struct mw_cmd cmd;
	char extra[512], cstr[512], load[64];
	bool failed = false;
	int status;

	for (int a = 0; a < MW_NALLOC; a++)
		o.want_alloc[a] = true;
	for (int w = 0; w < MW_NWORK; w++)
		o.want_work[w] = true;
	memset(&cmd, 0, sizeof(cmd));
	if ((status = mw_options(argc, argv, &o)) >= 0)
		return status;
	if (usrvm_config_load(&cfg) != 0)
		return 2;
	snprintf(extra, sizeof(extra), "runs=%u budget-runs=%u scale=%u%% "
	    "timeout=%us tmp-dir=%s parts=%s%s%s loadavg=%s", o.runs,
	    o.budget_runs, o.scale, o.timeout, o.tmp_dir, o.speed ? "speed" :
	    "", o.speed && o.budget ? "," : "", o.budget ? "budget" : "",
	    mw_loadavg(load, sizeof(load)));
	bench_header("malloc", &cfg, extra);
	if (mw_locate(&o) != 0)
		return 2;
	printf("malloc allocators: glibc=the system's malloc");
	for (int a = MW_JEMALLOC; a < MW_NALLOC; a++)
		if (o.want_alloc[a] || (a == MW_USRVM && o.budget))
			printf(" %s=LD_PRELOAD=%s", mw_alloc_name[a],
			    o.alloc_path[a]);
	printf("%s; a child process per run, timed from fork to exit, "
	    "allocators interleaved\n", o.want_alloc[MW_USRVM] ?
	    " with USRVM_MEM=4 x glibc's peak RSS (at least 256M)" : "");

	signal(SIGINT, mw_signal);
	signal(SIGTERM, mw_signal);
	signal(SIGHUP, mw_signal);
	for (int w = 0; w < MW_NWORK; w++) {
		struct mw_result ref;
		unsigned bscale = o.budget_scale != 0 ? o.budget_scale :
		    o.scale * mw_work[w].budget_scale / 100;
		long peak = 0;
		bool have_ref = false;

		if (!o.want_work[w])
			continue;
		if (bscale == 0)
			bscale = 1;
		if (o.speed) {
			if (mw_command(&o, w, o.scale, &cmd) != 0) {
				failed = true;
				continue;
			}
			printf("malloc workload %s (%u thread%s, scale %u%%): "
			    "%s: %s\n", mw_work[w].name, mw_work[w].threads,
			    mw_work[w].threads > 1 ? "s" : "", o.scale,
			    mw_work[w].what, mw_cmd_str(&cmd, cstr,
			    sizeof(cstr)));
			fflush(stdout);
			if (mw_reference(&o, w, &cmd, &ref) != 0) {
				failed = true;
				continue;
			}
			have_ref = true;
			peak = ref.maxrss_kb;
			mw_speed_part(&o, w, &cmd, &ref, peak, &speed[w]);
			for (int a = 0; a < MW_NALLOC; a++)
				failed |= speed[w].failed[a];
			/* The highest of glibc's peaks. */
			for (unsigned i = 0; i < speed[w].ok[MW_GLIBC]; i++)
				if (speed[w].rss[MW_GLIBC][i] > peak)
					peak = speed[w].rss[MW_GLIBC][i];
		}
		if (!o.budget)
			continue;
		if (!have_ref || bscale != o.scale) {
			if (mw_command(&o, w, bscale, &cmd) != 0) {
				failed = true;
				continue;
			}
			printf("malloc workload %s (%u thread%s, scale %u%%, "
			    "budget part): %s\n", mw_work[w].name,
			    mw_work[w].threads, mw_work[w].threads > 1 ? "s" :
			    "", bscale, mw_cmd_str(&cmd, cstr, sizeof(cstr)));
			if (mw_reference(&o, w, &cmd, &ref) != 0) {
				failed = true;
				continue;
			}
			peak = ref.maxrss_kb;
		}
		budget[w].scale = bscale;
		mw_budget_part(&o, w, &cmd, &ref, peak, &budget[w]);
		failed |= !budget[w].u_ok;
	}
	free(cmd.script);
	if (o.sort_input[0] != '\0')
		unlink(o.sort_input);
	mw_cleanup_file = NULL;
	mw_summary(&o, speed, budget);
	printf("malloc loadavg at the end: %s\n", mw_loadavg(load,
	    sizeof(load)));
	fflush(stdout);
	if (failed) {
		fprintf(stderr, "%s: FAILED (see the lines above)\n", o.prog);
		return 1;
	}
	return 0;
}
