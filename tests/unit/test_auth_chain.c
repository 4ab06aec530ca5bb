/* Unit tests for the auth chain (core/auth_chain.c) as the transport's
 * host slots drive it: a fake auth plugin that answers inside its
 * authenticate() call or later, and what the client is told. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fake_node.h"
#include "session.h"

static fake_node node;

static void setup(void)
{
	fake_node_init(&node, "allow_anonymous = true", true);
}

static void teardown(void)
{
	fake_node_free(&node);
}

START_TEST(test_an_answer_given_inside_authenticate_admits_the_client)
{
	node.auth_mode = FAKE_AUTH_NOW;
	fake_auth_allow(&node, "alice", 0);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert_uint_eq(node.authenticates, 1);
	ck_assert(c->answered && c->allowed);
	ck_assert_uint_eq(c->n_frames, 1);
	ck_assert_ptr_nonnull(strstr(c->frames[0], "\"user\":\"alice\""));
	ck_assert_str_eq(node.calls[0], "user_online alice");
	ck_assert_ptr_null(c->session->auth_run);
}
END_TEST

START_TEST(test_an_answer_given_later_admits_the_client_then)
{
	node.auth_mode = FAKE_AUTH_LATER;
	fake_auth_allow(&node, "alice", 0);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert(!c->answered);
	ck_assert_int_eq(c->session->state, SESSION_PENDING);
	ck_assert_ptr_nonnull(c->session->auth_run);
	ck_assert_uint_eq(node.n_calls, 0);
	fake_auth_answer(&node);
	ck_assert(c->answered && c->allowed);
	ck_assert_int_eq(c->session->state, SESSION_OPEN);
	ck_assert_ptr_nonnull(strstr(fake_last_frame(c), "\"type\":\"welcome\""));
	ck_assert_str_eq(node.calls[0], "user_online alice");
}
END_TEST

START_TEST(test_a_deny_is_passed_to_the_client_with_its_status)
{
	fake_auth_deny(&node, 401);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert(c->answered && !c->allowed);
	ck_assert_int_eq(c->status, 401);
	ck_assert_str_eq(c->reason, "fake says no");
	ck_assert_uint_eq(node.n_calls, 0);
}
END_TEST

START_TEST(test_a_deny_with_a_status_outside_the_contract_becomes_403)
{
	fake_auth_deny(&node, 500);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert_int_eq(c->status, 403);
}
END_TEST

START_TEST(test_when_every_plugin_ignores_the_client_is_a_guest)
{
	fake_auth_ignore(&node);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert_uint_eq(node.authenticates, 1);
	ck_assert(c->answered && c->allowed);
	ck_assert_ptr_nonnull(strstr(c->session->user, "guest-"));
}
END_TEST

START_TEST(test_a_plugin_allowing_a_guest_name_is_refused_with_403)
{
	fake_auth_allow(&node, "Guest-1234", 0);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert(c->answered && !c->allowed);
	ck_assert_int_eq(c->status, 403);
	ck_assert_str_eq(c->reason, "user id reserved for guests");
	ck_assert_uint_eq(confab_dict_count(node.b.sessions), 0);
}
END_TEST

START_TEST(test_a_plugin_allowing_an_invalid_user_id_is_refused_with_403)
{
	fake_auth_allow(&node, "no spaces", 0);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert_int_eq(c->status, 403);
	ck_assert_str_eq(c->reason, "invalid user id");
}
END_TEST

START_TEST(test_a_client_that_leaves_before_the_answer_cancels_the_check)
{
	node.auth_mode = FAKE_AUTH_LATER;
	fake_auth_allow(&node, "alice", 0);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	fake_closed(&node, c);
	ck_assert_uint_eq(node.cancels, 1);
	ck_assert_ptr_null(node.auth_done);
	ck_assert(!c->answered);
	ck_assert_uint_eq(node.n_calls, 0);
	ck_assert_uint_eq(confab_dict_count(node.b.sessions), 0);
}
END_TEST

START_TEST(test_without_cancel_a_late_answer_for_a_client_that_left_is_dropped)
{
	node.auth_ops.cancel = NULL;
	node.auth_mode = FAKE_AUTH_LATER;
	fake_auth_allow(&node, "alice", 0);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	fake_closed(&node, c);
	ck_assert_uint_eq(node.cancels, 0);
	fake_auth_answer(&node);     /* the run still held the session */
	ck_assert(!c->answered);
	ck_assert_uint_eq(node.n_calls, 0);
	ck_assert_ptr_null(session_of_user(&node.b, "alice"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("auth_chain");
	TCase *tc = tcase_create("chain");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_an_answer_given_inside_authenticate_admits_the_client);
	tcase_add_test(tc, test_an_answer_given_later_admits_the_client_then);
	tcase_add_test(tc, test_a_deny_is_passed_to_the_client_with_its_status);
	tcase_add_test(tc, test_a_deny_with_a_status_outside_the_contract_becomes_403);
	tcase_add_test(tc, test_when_every_plugin_ignores_the_client_is_a_guest);
	tcase_add_test(tc, test_a_plugin_allowing_a_guest_name_is_refused_with_403);
	tcase_add_test(tc, test_a_plugin_allowing_an_invalid_user_id_is_refused_with_403);
	tcase_add_test(tc, test_a_client_that_leaves_before_the_answer_cancels_the_check);
	tcase_add_test(tc, test_without_cancel_a_late_answer_for_a_client_that_left_is_dropped);
	suite_add_tcase(s, tc);

	return fake_run_suite(s);
}
