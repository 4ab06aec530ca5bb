/* The main() of a Check unit test, written once: one suite of one test
 * case, run, and the exit status automake's test driver reads.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_UNIT_MAIN_H
#define CONFAB_UNIT_MAIN_H

#include <check.h>
#include <stdlib.h>

/* Runs the n tests under the suite `name`, each bounded to `timeout`
 * seconds (0: Check's default). EXIT_SUCCESS when every one passed. */
static inline int unit_main(const char *name, const TTest *const tests[], size_t n,
			    double timeout)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create(name);
	SRunner *sr;
	int failed;

	if (timeout > 0)
		tcase_set_timeout(tc, timeout);
	for (size_t i = 0; i < n; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* CONFAB_UNIT_MAIN_H */
