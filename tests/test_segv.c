/*
 * test_segv.c: an access outside every map entry is a SIGSEGV that says
 * where it happened and then behaves as the process would without usrvm
 * (default action, or the application's own handler).  Each case runs in
 * a child process.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/*
 * Run fn in a child with stderr captured; return its wait status and
 * what it wrote to stderr.
 */
static int
run_child(void (*fn)(void), char *err, size_t errlen)
{
	int pfd[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl);	/* no core files */
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		fn();
		_exit(99);			/* fn should not return */
	}
	close(pfd[1]);
	while (got < (ssize_t)errlen - 1 &&
	    (n = read(pfd[0], err + got, errlen - 1 - got)) > 0)
		got += n;
	err[got] = '\0';
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static char *hole;

static void
touch_hole(void)
{
	struct usrvm_space *vs;
	char *p;

	t_start();
	vs = usrvm_default_space();
	p = t_map(vs, 8 * T_PAGE);
	ck_assert_int_eq(usrvm_unmap(vs, p + 4 * T_PAGE, 4 * T_PAGE), 0);
	hole = p + 5 * T_PAGE;
	fprintf(stderr, "hole=%p\n", (void *)hole);
	*(volatile char *)hole = 1;
}

START_TEST(no_entry)
{
	char err[2048], want[64];
	int status = run_child(touch_hole, err, sizeof(err));

	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
	    "status %#x, stderr: %s", status, err);
	ck_assert_msg(strstr(err, "no map entry") != NULL, "stderr: %s", err);
	/* The message names the faulting address. */
	char *h = strstr(err, "hole=0x");
	ck_assert_ptr_nonnull(h);
	snprintf(want, sizeof(want), "SIGSEGV at %.*s", (int)strcspn(h + 5,
	    "\n"), h + 5);
	ck_assert_msg(strstr(err, want) != NULL, "want '%s' in: %s", want,
	    err);
}
END_TEST

static void
write_readonly(void)
{
	struct usrvm_space *vs;
	char *p;

	t_start();
	vs = usrvm_default_space();
	p = usrvm_map(vs, NULL, T_PAGE, USRVM_PROT_READ,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0);
	ck_assert_ptr_nonnull(p);
	(void)*(volatile char *)p;
	*(volatile char *)p = 1;
}

START_TEST(protection)
{
	char err[2048];
	int status = run_child(write_readonly, err, sizeof(err));

	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
	    "status %#x", status);
	ck_assert_msg(strstr(err, "protection: entry") != NULL &&
	    strstr(err, "read-only") != NULL, "stderr: %s", err);
}
END_TEST

static void
app_handler(int sig)
{
	(void)sig;
	_exit(42);
}

static void
chained(void)
{
	signal(SIGSEGV, app_handler);	/* installed before usrvm */
	touch_hole();
}

START_TEST(chains_to_application_handler)
{
	char err[2048];
	int status = run_child(chained, err, sizeof(err));

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42,
	    "status %#x, stderr: %s", status, err);
	ck_assert_msg(strstr(err, "no map entry") != NULL, "stderr: %s", err);
}
END_TEST

static void
outside_spaces(void)
{
	static volatile uintptr_t addr = 16;	/* not managed memory */

	t_start();
	*(volatile char *)addr = 1;
}

START_TEST(unmanaged_address_is_silent)
{
	char err[2048];
	int status = run_child(outside_spaces, err, sizeof(err));

	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
	ck_assert_msg(strstr(err, "usrvm:") == NULL, "stderr: %s", err);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("segv");
	TCase *tc = tcase_create("segv");

	t_require_uffd();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, no_entry);
	tcase_add_test(tc, protection);
	tcase_add_test(tc, chains_to_application_handler);
	tcase_add_test(tc, unmanaged_address_is_silent);
	suite_add_tcase(s, tc);
	return t_run(s, 60);
}
