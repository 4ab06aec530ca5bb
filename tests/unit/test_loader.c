/* Unit tests for core/loader.c: the fixture plugins of tests/fixtures/, each
 * broken in exactly one way, are refused with a sentence that says why; the
 * good ones load. Hand-made descriptors cover what no .so needs to.
 *
 * The fixtures are found through CONFAB_FIXTURE_DIR (tests/Makefile.am sets
 * it to tests/fixtures/.libs). Run through `make check`.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embedded.h"
#include "host.h"
#include "loader.h"

/* ---- helpers ------------------------------------------------------------ */

/* The path of fixture `name` (e.g. "fx_good_auth.so"), in a static buffer. */
static const char *fixture(const char *name)
{
	static char path[1024];
	const char *dir = getenv("CONFAB_FIXTURE_DIR");
	ck_assert_msg(dir != NULL && *dir != '\0',
		      "CONFAB_FIXTURE_DIR is not set: run the loader tests through "
		      "`make -C tests check` (it points at tests/fixtures/.libs)");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_msg(access(path, R_OK) == 0,
		      "fixture %s is missing: `make -C tests check` builds it", path);
	return path;
}

/* Opens `path` expecting a refusal whose sentence contains `why`. */
static void assert_refused(const char *path, const char *why)
{
	loaded_plugin p;
	char err[512] = "";
	int rc = loader_open(path, &p, err, sizeof(err));
	ck_assert_msg(rc == CONFAB_EINVAL, "%s: expected CONFAB_EINVAL, got %d (%s)", path, rc,
		      err);
	ck_assert_msg(strstr(err, why) != NULL, "%s: the reason \"%s\" does not mention \"%s\"",
		      path, err, why);
	/* nothing stays loaded */
	ck_assert_ptr_null(p.handle);
	ck_assert_ptr_null(p.path);
	ck_assert_ptr_null(p.desc);
}

/* Opens `path` expecting success. The caller closes it. */
static void assert_loads(const char *path, loaded_plugin *p)
{
	char err[512] = "";
	int rc = loader_open(path, p, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s refused (%d): %s", path, rc, err);
	ck_assert_ptr_nonnull(p->handle);
	ck_assert_ptr_nonnull(p->desc);
	ck_assert_str_eq(p->path, path);
}

/* ---- loader_open on the fixture plugins ---------------------------------- */

START_TEST(test_good_auth_plugin_loads_with_its_kind_name_and_version)
{
	loaded_plugin p;
	assert_loads(fixture("fx_good_auth.so"), &p);
	ck_assert_int_eq(p.desc->kind, CONFAB_KIND_AUTH);
	ck_assert_str_eq(p.desc->name, "fx_good_auth");
	ck_assert_str_eq(p.desc->version, "0.0.1");
	ck_assert_uint_eq(p.desc->abi_major, CONFAB_ABI_MAJOR);
	ck_assert_ptr_nonnull(p.desc->auth);
	ck_assert_ptr_nonnull(p.desc->auth->authenticate);
	loader_close(&p);
	ck_assert_ptr_null(p.handle);
	ck_assert_ptr_null(p.path);
	ck_assert_ptr_null(p.desc);
}
END_TEST

START_TEST(test_same_file_loads_twice_for_two_instances)
{
	loaded_plugin a, b;
	assert_loads(fixture("fx_good_auth.so"), &a);
	assert_loads(fixture("fx_good_auth.so"), &b);
	ck_assert_ptr_eq(a.desc, b.desc);
	loader_close(&a);
	loader_close(&b);
}
END_TEST

START_TEST(test_plugin_without_entry_symbol_is_refused_naming_the_symbol)
{
	assert_refused(fixture("fx_no_symbol.so"), "confab_plugin_entry");
}
END_TEST

START_TEST(test_plugin_with_bad_magic_is_refused_saying_magic)
{
	assert_refused(fixture("fx_bad_magic.so"), "magic");
}
END_TEST

START_TEST(test_plugin_for_another_abi_major_is_refused_saying_major)
{
	assert_refused(fixture("fx_major_mismatch.so"), "major");
}
END_TEST

START_TEST(test_plugin_for_a_newer_abi_minor_is_refused_saying_minor)
{
	assert_refused(fixture("fx_newer_minor.so"), "minor");
}
END_TEST

START_TEST(test_plugin_built_for_abi_1_0_loads)
{
	loaded_plugin p;
	assert_loads(fixture("fx_older_minor.so"), &p);
	ck_assert_str_eq(p.desc->name, "fx_older_minor");
	ck_assert_uint_eq(p.desc->abi_minor, 0);
	ck_assert_int_eq(p.desc->kind, CONFAB_KIND_AUTH);
	/* its 1.0 auth table ends before the 1.3 cancel slot: never read */
	ck_assert(!CONFAB_HAS(p.desc->auth, cancel));
	loader_close(&p);
}
END_TEST

START_TEST(test_plugin_built_for_abi_1_2_loads)
{
	loaded_plugin p;
	assert_loads(fixture("fx_v1_2_auth.so"), &p);
	ck_assert_str_eq(p.desc->name, "fx_v1_2_auth");
	ck_assert_uint_eq(p.desc->abi_minor, 2);
	ck_assert_uint_eq(p.desc->kind, CONFAB_KIND_AUTH);
	ck_assert(CONFAB_HAS(p.desc->auth, authenticate));
	/* its 1.2 auth table ends before the 1.3 cancel slot: never read */
	ck_assert(!CONFAB_HAS_FIELD(p.desc->auth, cancel));
	ck_assert(!CONFAB_HAS(p.desc->auth, cancel));
	loader_close(&p);
}
END_TEST

START_TEST(test_has_checks_the_size_and_the_slot)
{
	/* CONFAB_HAS: long enough and set; CONFAB_HAS_FIELD: long enough. */
	confab_auth_ops ops = { .size = sizeof(ops), .authenticate = NULL, .cancel = NULL };
	const confab_auth_ops *none = NULL;
	ck_assert(CONFAB_HAS_FIELD(&ops, cancel));
	ck_assert(!CONFAB_HAS(&ops, cancel));
	ops.cancel = (void (*)(void *, void *))1;
	ck_assert(CONFAB_HAS(&ops, cancel));
	ops.size = (uint32_t)offsetof(confab_auth_ops, cancel);
	ck_assert(!CONFAB_HAS_FIELD(&ops, cancel) && !CONFAB_HAS(&ops, cancel));
	ck_assert(!CONFAB_HAS_FIELD(none, cancel) && !CONFAB_HAS(none, cancel));
}
END_TEST

START_TEST(test_abi_1_3_auth_plugins_get_cancel_and_login_begin)
{
	loaded_plugin p;
	assert_loads(fixture("fx_slow_auth.so"), &p);
	ck_assert_uint_ge(p.desc->abi_minor, 3);
	ck_assert(CONFAB_HAS(p.desc->auth, cancel) && p.desc->auth->cancel != NULL);
	const confab_host *h = host_table(CONFAB_KIND_AUTH);
	ck_assert(CONFAB_HAS(h, auth) && h->auth != NULL);
	ck_assert(CONFAB_HAS(h->auth, login_begin) && h->auth->login_begin != NULL);
	ck_assert_ptr_null(host_table(CONFAB_KIND_TRANSPORT)->auth);
	loader_close(&p);
}
END_TEST

START_TEST(test_plugin_of_unknown_kind_is_refused_saying_kind)
{
	assert_refused(fixture("fx_bad_kind.so"), "kind");
}
END_TEST

START_TEST(test_plugin_whose_table_does_not_match_its_kind_is_refused)
{
	assert_refused(fixture("fx_kind_mismatch.so"), "transport");
}
END_TEST

START_TEST(test_plugin_missing_a_mandatory_slot_is_refused_naming_the_slot)
{
	assert_refused(fixture("fx_missing_slot.so"), "authenticate");
}
END_TEST

START_TEST(test_plugin_whose_init_fails_still_passes_the_loader)
{
	/* init runs later, in the host: the descriptor itself is fine */
	loaded_plugin p;
	assert_loads(fixture("fx_init_fails.so"), &p);
	loader_close(&p);
}
END_TEST

START_TEST(test_backplane_plugin_loads_as_backplane)
{
	loaded_plugin p;
	assert_loads(fixture("fx_backplane.so"), &p);
	ck_assert_int_eq(p.desc->kind, CONFAB_KIND_BACKPLANE);
	ck_assert_str_eq(p.desc->name, "fx_backplane");
	ck_assert_ptr_nonnull(p.desc->backplane);
	ck_assert_ptr_null(p.desc->auth);
	ck_assert_ptr_null(p.desc->transport);
	loader_close(&p);
}
END_TEST

START_TEST(test_missing_file_is_refused_saying_cannot_load)
{
	assert_refused("/nonexistent/confab/fx_nothing_here.so", "cannot load");
}
END_TEST

START_TEST(test_file_that_is_not_a_shared_object_is_refused)
{
	const char *tmpdir = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/confab-test-notaplugin-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	static const char text[] = "this is a text file, not a plugin\n";
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	assert_refused(path, "cannot load");
	unlink(path);
}
END_TEST

/* ---- loader_check on hand-made descriptors ------------------------------- */

static int fake_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	*state = NULL;
	return 0;
}

static int fake_start(void *state)
{
	return 0;
}

static void fake_destroy(void *state)
{
}

static int fake_authenticate(void *state, const confab_request *req, confab_auth_done done,
			     void *arg)
{
	return 0;
}

static int fake_send(void *state, void *conn, confab_buf *frame)
{
	return 0;
}

static void fake_close(void *state, void *conn, int code, const char *reason)
{
}

static const confab_auth_ops auth_ops = {
	.size = sizeof(confab_auth_ops),
	.authenticate = fake_authenticate,
};

static const confab_transport_ops transport_ops = {
	.size = sizeof(confab_transport_ops),
	.headroom = 16,
	.send = fake_send,
	.close = fake_close,
};

/* A valid auth descriptor that a test then breaks in one way. */
static confab_plugin good_auth(void)
{
	confab_plugin d = {
		CONFAB_PLUGIN_HEADER(CONFAB_KIND_AUTH, "hand_made", "1.0.0"),
		.init = fake_init,
		.start = fake_start,
		.destroy = fake_destroy,
		.auth = &auth_ops,
	};
	return d;
}

static confab_plugin good_transport(void)
{
	confab_plugin d = {
		CONFAB_PLUGIN_HEADER(CONFAB_KIND_TRANSPORT, "hand_made", "1.0.0"),
		.init = fake_init,
		.start = fake_start,
		.destroy = fake_destroy,
		.transport = &transport_ops,
	};
	return d;
}

#define assert_check_refuses(d, why) assert_check_refuses_at(d, why, __LINE__)
static void assert_check_refuses_at(const confab_plugin *d, const char *why, int line)
{
	char err[512] = "";
	int rc = loader_check(d, err, sizeof(err));
	ck_assert_msg(rc == CONFAB_EINVAL, "line %d: expected CONFAB_EINVAL (\"%s\"), got %d",
		      line, why, rc);
	ck_assert_msg(strstr(err, why) != NULL, "line %d: the reason \"%s\" does not mention \"%s\"",
		      line, err, why);
}

#define assert_check_accepts(d) assert_check_accepts_at(d, __LINE__)
static void assert_check_accepts_at(const confab_plugin *d, int line)
{
	char err[512] = "";
	int rc = loader_check(d, err, sizeof(err));
	ck_assert_msg(rc == 0, "line %d: refused (%d): %s", line, rc, err);
}

START_TEST(test_hand_made_auth_and_transport_descriptors_pass_the_check)
{
	confab_plugin d = good_auth();
	assert_check_accepts(&d);
	d = good_transport();
	assert_check_accepts(&d);
}
END_TEST

START_TEST(test_null_descriptor_is_refused)
{
	assert_check_refuses(NULL, "NULL");
}
END_TEST

START_TEST(test_descriptor_smaller_than_abi_1_0_is_refused)
{
	confab_plugin d = good_auth();
	d.size = (uint32_t)offsetof(confab_plugin, auth);
	assert_check_refuses(&d, "size");
	d.size = 0;
	assert_check_refuses(&d, "size");
}
END_TEST

START_TEST(test_descriptor_without_name_or_version_is_refused)
{
	confab_plugin d = good_auth();
	d.name = NULL;
	assert_check_refuses(&d, "name");
	d = good_auth();
	d.name = "";
	assert_check_refuses(&d, "name");
	d = good_auth();
	d.version = NULL;
	assert_check_refuses(&d, "version");
}
END_TEST

START_TEST(test_descriptor_missing_init_or_destroy_is_refused_naming_it)
{
	confab_plugin d = good_auth();
	d.init = NULL;
	assert_check_refuses(&d, "init");
	d = good_auth();
	d.destroy = NULL;
	assert_check_refuses(&d, "destroy");
}
END_TEST

/* plugin.h: "init and destroy are mandatory, start and stop optional" */
START_TEST(test_descriptor_without_start_or_stop_is_accepted)
{
	confab_plugin d = good_auth();
	d.start = NULL;
	d.stop = NULL;
	assert_check_accepts(&d);
}
END_TEST

START_TEST(test_descriptor_with_wrong_magic_or_major_or_newer_minor_is_refused)
{
	confab_plugin d = good_auth();
	d.magic = 0;
	assert_check_refuses(&d, "magic");
	d = good_auth();
	d.abi_major = CONFAB_ABI_MAJOR + 1;
	assert_check_refuses(&d, "major");
	d = good_auth();
	d.abi_major = CONFAB_ABI_MAJOR - 1;
	assert_check_refuses(&d, "major");
	d = good_auth();
	d.abi_minor = CONFAB_ABI_MINOR + 1;
	assert_check_refuses(&d, "minor");
	d = good_auth();
	d.abi_minor = 0;
	assert_check_accepts(&d);
}
END_TEST

START_TEST(test_transport_table_too_short_is_refused)
{
	confab_transport_ops shorter = transport_ops;
	shorter.size = (uint32_t)offsetof(confab_transport_ops, close);
	confab_plugin d = good_transport();
	d.transport = &shorter;
	assert_check_refuses(&d, "too short");
}
END_TEST

/* ABI 1.3 appends send_budget: a transport built at 1.2 has a table that
 * ends with close, and keeps loading (the core then pages replies at a
 * fixed size, tested in test_protocol). */
START_TEST(test_transport_table_of_abi_1_2_without_send_budget_is_accepted)
{
	confab_transport_ops older = transport_ops;
	older.size = (uint32_t)(offsetof(confab_transport_ops, close) + sizeof(older.close));
	confab_plugin d = good_transport();
	d.abi_minor = 2;
	d.transport = &older;
	assert_check_accepts(&d);
}
END_TEST

START_TEST(test_transport_without_its_table_or_slots_is_refused)
{
	confab_plugin d = good_transport();
	d.transport = NULL;
	assert_check_refuses(&d, "missing");

	confab_transport_ops ops = transport_ops;
	ops.send = NULL;
	d = good_transport();
	d.transport = &ops;
	assert_check_refuses(&d, "send");

	ops = transport_ops;
	ops.close = NULL;
	d.transport = &ops;
	assert_check_refuses(&d, "close");
}
END_TEST

START_TEST(test_descriptor_carrying_two_kinds_tables_is_refused)
{
	confab_plugin d = good_transport();
	d.auth = &auth_ops;
	assert_check_refuses(&d, "another kind");
}
END_TEST

START_TEST(test_backplane_missing_a_slot_is_refused_naming_it)
{
	confab_backplane_ops ops = *embedded_backplane()->backplane;
	ops.history = NULL;
	confab_plugin d = *embedded_backplane();
	d.backplane = &ops;
	assert_check_refuses(&d, "history");

	ops = *embedded_backplane()->backplane;
	ops.size = (uint32_t)offsetof(confab_backplane_ops, history);
	assert_check_refuses(&d, "too short");
}
END_TEST

START_TEST(test_backplane_built_at_1_2_sizes_passes_the_loader_check)
{
	/* A 1.2 backplane: no room_epoch or history_epoch; the core then
	 * reports no epoch (router.c checks CONFAB_HAS on both). */
	confab_backplane_ops ops = *embedded_backplane()->backplane;
	ops.size = (uint32_t)offsetof(confab_backplane_ops, room_epoch);
	confab_plugin d = *embedded_backplane();
	d.abi_minor = 2;
	d.backplane = &ops;
	assert_check_accepts(&d);
	ck_assert(!CONFAB_HAS_FIELD(&ops, room_epoch));
	ck_assert(!CONFAB_HAS_FIELD(&ops, history_epoch));
	ck_assert(CONFAB_HAS_FIELD(&ops, room_ready));
}
END_TEST

START_TEST(test_backplane_built_at_1_3_sizes_passes_the_loader_check)
{
	/* A 1.3 backplane: no publish_idem or direct_idem; the core then
	 * calls publish and direct, and ignores a client's idem key. */
	confab_backplane_ops ops = *embedded_backplane()->backplane;
	ops.size = (uint32_t)offsetof(confab_backplane_ops, publish_idem);
	confab_plugin d = *embedded_backplane();
	d.abi_minor = 3;
	d.backplane = &ops;
	assert_check_accepts(&d);
	ck_assert(CONFAB_HAS_FIELD(&ops, history_epoch));
	ck_assert(!CONFAB_HAS_FIELD(&ops, publish_idem));
	ck_assert(!CONFAB_HAS_FIELD(&ops, direct_idem));
	/* and an envelope of 1.3 has no idem */
	confab_envelope env = { .size = (uint32_t)offsetof(confab_envelope, idem) };
	ck_assert(CONFAB_HAS_FIELD(&env, epoch));
	ck_assert(!CONFAB_HAS_FIELD(&env, idem));
}
END_TEST

START_TEST(test_embedded_backplane_passes_the_loader_check)
{
	const confab_plugin *d = embedded_backplane();
	ck_assert_ptr_nonnull(d);
	assert_check_accepts(d);
	ck_assert_int_eq(d->kind, CONFAB_KIND_BACKPLANE);
	ck_assert_str_eq(d->name, "embedded");
	ck_assert_str_eq(loader_kind_name(d->kind), "backplane");
}
END_TEST

START_TEST(test_kind_names)
{
	ck_assert_str_eq(loader_kind_name(CONFAB_KIND_TRANSPORT), "transport");
	ck_assert_str_eq(loader_kind_name(CONFAB_KIND_BACKPLANE), "backplane");
	ck_assert_str_eq(loader_kind_name(CONFAB_KIND_AUTH), "auth");
	ck_assert_str_eq(loader_kind_name((confab_kind)99), "unknown");
}
END_TEST

/* ---- chain entries to paths and instance names --------------------------- */

static void assert_resolves(const char *dir, const char *entry, const char *want)
{
	char *got = loader_resolve_path(dir, entry);
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strcmp(got, want) == 0, "(%s, %s) resolved to %s, not %s", dir, entry, got,
		      want);
	free(got);
}

static void assert_instance(const char *entry, const char *want)
{
	char *got = loader_instance_name(entry);
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strcmp(got, want) == 0, "%s named %s, not %s", entry, got, want);
	free(got);
}

START_TEST(test_plain_name_resolves_to_plugin_dir_name_so)
{
	assert_resolves("/usr/lib/confab", "ws", "/usr/lib/confab/ws.so");
	assert_resolves("plugins", "allowlist", "plugins/allowlist.so");
}
END_TEST

START_TEST(test_name_with_a_slash_is_a_path_as_is)
{
	assert_resolves("/usr/lib/confab", "/x/y.so", "/x/y.so");
	assert_resolves("/usr/lib/confab", "./rel/z.so", "./rel/z.so");
}
END_TEST

START_TEST(test_instance_name_is_the_base_name_without_so)
{
	assert_instance("ws", "ws");
	assert_instance("/x/y.so", "y");
	assert_instance("/a/b", "b");
	assert_instance("./rel/z.so", "z");
	assert_instance("ws.so", "ws");
}
END_TEST

static Suite *loader_suite(void)
{
	Suite *s = suite_create("loader");

	TCase *tc = tcase_create("fixtures");
	tcase_add_test(tc, test_good_auth_plugin_loads_with_its_kind_name_and_version);
	tcase_add_test(tc, test_plugin_built_for_abi_1_2_loads);
	tcase_add_test(tc, test_has_checks_the_size_and_the_slot);
	tcase_add_test(tc, test_same_file_loads_twice_for_two_instances);
	tcase_add_test(tc, test_plugin_without_entry_symbol_is_refused_naming_the_symbol);
	tcase_add_test(tc, test_plugin_with_bad_magic_is_refused_saying_magic);
	tcase_add_test(tc, test_plugin_for_another_abi_major_is_refused_saying_major);
	tcase_add_test(tc, test_plugin_for_a_newer_abi_minor_is_refused_saying_minor);
	tcase_add_test(tc, test_plugin_built_for_abi_1_0_loads);
	tcase_add_test(tc, test_abi_1_3_auth_plugins_get_cancel_and_login_begin);
	tcase_add_test(tc, test_plugin_of_unknown_kind_is_refused_saying_kind);
	tcase_add_test(tc, test_plugin_whose_table_does_not_match_its_kind_is_refused);
	tcase_add_test(tc, test_plugin_missing_a_mandatory_slot_is_refused_naming_the_slot);
	tcase_add_test(tc, test_plugin_whose_init_fails_still_passes_the_loader);
	tcase_add_test(tc, test_backplane_plugin_loads_as_backplane);
	tcase_add_test(tc, test_missing_file_is_refused_saying_cannot_load);
	tcase_add_test(tc, test_file_that_is_not_a_shared_object_is_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("check");
	tcase_add_test(tc, test_hand_made_auth_and_transport_descriptors_pass_the_check);
	tcase_add_test(tc, test_null_descriptor_is_refused);
	tcase_add_test(tc, test_descriptor_smaller_than_abi_1_0_is_refused);
	tcase_add_test(tc, test_descriptor_without_name_or_version_is_refused);
	tcase_add_test(tc, test_descriptor_missing_init_or_destroy_is_refused_naming_it);
	tcase_add_test(tc, test_descriptor_without_start_or_stop_is_accepted);
	tcase_add_test(tc, test_descriptor_with_wrong_magic_or_major_or_newer_minor_is_refused);
	tcase_add_test(tc, test_transport_table_too_short_is_refused);
	tcase_add_test(tc, test_transport_table_of_abi_1_2_without_send_budget_is_accepted);
	tcase_add_test(tc, test_transport_without_its_table_or_slots_is_refused);
	tcase_add_test(tc, test_descriptor_carrying_two_kinds_tables_is_refused);
	tcase_add_test(tc, test_backplane_missing_a_slot_is_refused_naming_it);
	tcase_add_test(tc, test_embedded_backplane_passes_the_loader_check);
	tcase_add_test(tc, test_backplane_built_at_1_2_sizes_passes_the_loader_check);
	tcase_add_test(tc, test_backplane_built_at_1_3_sizes_passes_the_loader_check);
	tcase_add_test(tc, test_kind_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, test_plain_name_resolves_to_plugin_dir_name_so);
	tcase_add_test(tc, test_name_with_a_slash_is_a_path_as_is);
	tcase_add_test(tc, test_instance_name_is_the_base_name_without_so);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(loader_suite());
	srunner_run_all(sr, CK_VERBOSE);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
