/*
 * usrvm-run: run an unmodified program with its heap in usrvm.
 *
 *	usrvm-run [--mem SIZE] [--swap PATH] [--swap-size SIZE] [--stats]
 *	    [--] prog [args...]
 *
 * Sets LD_PRELOAD to libusrvm-preload.so and the USRVM_* configuration,
 * runs prog, and exits with its status (128 + the signal if it was
 * killed).  --stats: the program prints usrvm's summary when it exits.
 * A bad command line gets the usage and exit status 2; a program that
 * cannot be run, 127 (126 if it is not executable), as a shell does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usrvm.h"

#define PRELOAD_NAME	"libusrvm-preload.so"

/* The usage: on stdout with status 0 when asked for, else stderr, 2. */
static void
usage(const char *why, const char *arg)
{
	FILE *out = why == NULL && arg != NULL ? stdout : stderr;

	if (why != NULL)
		fprintf(stderr, "usrvm-run: %s%s%s\n", why, arg ? ": " : "",
		    arg ? arg : "");
	fprintf(out,
	    "usage: usrvm-run [--mem SIZE] [--swap PATH] [--swap-size SIZE] "
	    "[--stats] [--] prog [args...]\n"
	    "  --mem SIZE        most heap memory resident at once (e.g. "
	    "256M); the rest is swapped\n"
	    "  --swap PATH       swap file or directory (default: an "
	    "unlinked file in $TMPDIR)\n"
	    "  --swap-size SIZE  swap device size (default: 8 x --mem)\n"
	    "  --stats           print usrvm's summary when the program "
	    "exits\n"
	    "SIZE: digits with an optional K, M, G or T suffix.\n");
	exit(out == stdout ? 0 : 2);
}

/* An option's size argument, checked here so the program never starts
 * with a setting it would ignore. */
static const char *
size_arg(const char *opt, const char *v, size_t min)
{
	size_t n;

	if (v == NULL)
		usage("missing size after", opt);
	if (usrvm_parse_size(v, &n) != 0 || n < min) {
		fprintf(stderr, "usrvm-run: %s '%s': expected a size%s: digits "
		    "with an optional K, M, G or T suffix\n", opt, v,
		    min > 0 ? " of at least 1M" : "");
		usage(NULL, NULL);
	}
	return v;
}

/* USRVM_PRELOAD, else next to this program (build tree: ../, install:
 * ../lib/). */
static int
find_preload(char *out, size_t len)
{
	char self[PATH_MAX], *dir;
	const char *env = getenv("USRVM_PRELOAD");
	const char *rel[] = { "/../" PRELOAD_NAME, "/../lib/" PRELOAD_NAME,
	    "/" PRELOAD_NAME };
	ssize_t n;

	if (env != NULL && env[0] != '\0') {
		snprintf(out, len, "%s", env);
		return access(out, R_OK);
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) < 0)
		return -1;
	self[n] = '\0';
	dir = dirname(self);
	for (size_t i = 0; i < sizeof(rel) / sizeof(*rel); i++) {
		snprintf(out, len, "%s%s", dir, rel[i]);
		if (access(out, R_OK) == 0)
			return 0;
	}
	return -1;
}

int
main(int argc, char **argv)
{
	const char *mem = NULL, *swap = NULL, *swap_size = NULL;
	char preload[PATH_MAX], *ld;
	bool stats = false;
	int i, status;
	pid_t pid;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--mem") == 0) {
			mem = size_arg(a, argv[++i], (size_t)1 << 20);
		} else if (strncmp(a, "--mem=", 6) == 0) {
			mem = size_arg("--mem", a + 6, (size_t)1 << 20);
		} else if (strcmp(a, "--swap") == 0) {
			if ((swap = argv[++i]) == NULL || swap[0] == '\0')
				usage("missing path after", a);
		} else if (strncmp(a, "--swap=", 7) == 0) {
			if ((swap = a + 7)[0] == '\0')
				usage("missing path after", "--swap");
		} else if (strcmp(a, "--swap-size") == 0) {
			swap_size = size_arg(a, argv[++i], 0);
		} else if (strncmp(a, "--swap-size=", 12) == 0) {
			swap_size = size_arg("--swap-size", a + 12, 0);
		} else if (strcmp(a, "--stats") == 0) {
			stats = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(NULL, a);
		} else {
			usage("unknown option", a);
		}
	}
	if (i >= argc)
		usage("missing program", NULL);
	if (find_preload(preload, sizeof(preload)) != 0) {
		fprintf(stderr, "usrvm-run: cannot find %s (set "
		    "USRVM_PRELOAD to its path)\n", PRELOAD_NAME);
		return 2;
	}
	if ((ld = getenv("LD_PRELOAD")) != NULL && ld[0] != '\0') {
		char *both;
		if (asprintf(&both, "%s:%s", preload, ld) < 0)
			return 2;
		setenv("LD_PRELOAD", both, 1);
	} else {
		setenv("LD_PRELOAD", preload, 1);
	}
	if (mem != NULL)
		setenv("USRVM_MEM", mem, 1);
	if (swap != NULL)
		setenv("USRVM_SWAP", swap, 1);
	if (swap_size != NULL)
		setenv("USRVM_SWAP_SIZE", swap_size, 1);

	/* The terminal's signals reach the program; this waits for it. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	if ((pid = fork()) < 0) {
		perror("usrvm-run: fork");
		return 2;
	}
	if (pid == 0) {
		char me[32];
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		if (stats) {
			snprintf(me, sizeof(me), "%ld", (long)getpid());
			setenv("USRVM_STATS", me, 1);
		}
		execvp(argv[i], &argv[i]);
		fprintf(stderr, "usrvm-run: %s: %s\n", argv[i],
		    strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("usrvm-run: waitpid");
			return 2;
		}
	if (WIFSIGNALED(status)) {
		if (stats)
			fprintf(stderr, "usrvm-run: %s killed by signal %d "
			    "(%s): no summary\n", argv[i], WTERMSIG(status),
			    strsignal(WTERMSIG(status)));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}
