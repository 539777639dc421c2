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
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static char *hole;

static void
touch_hole(void *arg)
{
	struct usrvm_space *vs;
	char *p;

	(void)arg;
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
	int status = t_run_child(touch_hole, NULL, err, sizeof(err));

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
write_readonly(void *arg)
{
	struct usrvm_space *vs;
	char *p;

	(void)arg;
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
	int status = t_run_child(write_readonly, NULL, err, sizeof(err));

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
chained(void *arg)
{
	signal(SIGSEGV, app_handler);	/* installed before usrvm */
	touch_hole(arg);
}

START_TEST(chains_to_application_handler)
{
	char err[2048];
	int status = t_run_child(chained, NULL, err, sizeof(err));

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42,
	    "status %#x, stderr: %s", status, err);
	ck_assert_msg(strstr(err, "no map entry") != NULL, "stderr: %s", err);
}
END_TEST

static void
outside_spaces(void *arg)
{
	static volatile uintptr_t addr = 16;	/* not managed memory */

	(void)arg;
	t_start();
	*(volatile char *)addr = 1;
}

START_TEST(unmanaged_address_is_silent)
{
	char err[2048];
	int status = t_run_child(outside_spaces, NULL, err, sizeof(err));

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
