/* Unit tests for a session's life (core/session_flow.c over the registry,
 * core/session.c) and the expiry heap (core/expiry.c), driven through the
 * transport's host slots with a fake transport and backplane. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fake_node.h"
#include "session.h"

static fake_node node;

static void teardown(void)
{
	fake_node_free(&node);
}

static fake_conn *open_as(const char *user, int64_t expires_ms)
{
	fake_auth_allow(&node, user, expires_ms);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert(c->answered);
	ck_assert(c->allowed);
	return c;
}

START_TEST(test_an_anonymous_client_is_admitted_as_a_guest_when_allowed)
{
	fake_node_init(&node, "allow_anonymous = true", false);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert(c->answered && c->allowed);
	ck_assert_ptr_nonnull(strstr(fake_last_frame(c), "\"type\":\"welcome\""));
	ck_assert_ptr_nonnull(strstr(fake_last_frame(c), "\"user\":\"guest-"));
	ck_assert_uint_eq(node.n_calls, 1);
	ck_assert_ptr_nonnull(strstr(node.calls[0], "user_online guest-"));
	ck_assert_ptr_eq(session_find(&node.b, c->session->id), c->session);
}
END_TEST

START_TEST(test_an_anonymous_client_is_refused_with_401_when_not_allowed)
{
	fake_node_init(&node, "allow_anonymous = false", false);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert(c->answered && !c->allowed);
	ck_assert_int_eq(c->status, 401);
	ck_assert_uint_eq(c->n_frames, 0);
	ck_assert_uint_eq(node.n_calls, 0);
	ck_assert_uint_eq(confab_dict_count(node.b.sessions), 0);
}
END_TEST

START_TEST(test_a_user_is_online_once_for_all_its_sessions_and_offline_after_the_last)
{
	fake_node_init(&node, NULL, true);
	fake_conn *a = open_as("alice", 0);
	fake_conn *b = open_as("alice", 0);
	ck_assert_uint_eq(node.n_calls, 1);
	ck_assert_str_eq(node.calls[0], "user_online alice");
	ck_assert_uint_eq(confab_dict_count(session_of_user(&node.b, "alice")), 2);

	fake_closed(&node, a);
	ck_assert_uint_eq(node.n_calls, 1);
	ck_assert_uint_eq(confab_dict_count(session_of_user(&node.b, "alice")), 1);
	fake_closed(&node, b);
	ck_assert_uint_eq(node.n_calls, 2);
	ck_assert_str_eq(node.calls[1], "user_offline alice");
	ck_assert_ptr_null(session_of_user(&node.b, "alice"));
	ck_assert_uint_eq(confab_dict_count(node.b.sessions), 0);
}
END_TEST

/* A node whose backplane keeps each user_ready for fake_ready_answer. */
static void init_with_user_ready(void)
{
	fake_node_init(&node, NULL, true);
	fake_user_ready(&node, 0);
}

START_TEST(test_welcome_waits_until_the_backplane_has_the_user_online_everywhere)
{
	init_with_user_ready();
	fake_conn *c = open_as("alice", 0);
	ck_assert_uint_eq(node.n_calls, 2);
	ck_assert_str_eq(node.calls[0], "user_online alice");
	ck_assert_str_eq(node.calls[1], "user_ready alice");
	ck_assert_uint_eq(c->n_frames, 0);
	fake_ready_answer(&node, 0, 0);
	ck_assert_uint_eq(c->n_frames, 1);
	ck_assert_ptr_nonnull(strstr(fake_last_frame(c), "\"type\":\"welcome\""));
	ck_assert_ptr_nonnull(strstr(fake_last_frame(c), "\"user\":\"alice\""));
}
END_TEST

START_TEST(test_a_request_before_the_welcome_is_served_and_its_reply_brings_the_welcome)
{
	init_with_user_ready();
	fake_conn *c = open_as("alice", 0);
	ck_assert_uint_eq(c->n_frames, 0);
	fake_recv(&node, c, "{\"type\":\"join\",\"room\":\"lobby\",\"ref\":1}");
	ck_assert_uint_eq(c->n_frames, 2);
	ck_assert_ptr_nonnull(strstr(c->frames[0], "\"type\":\"welcome\""));
	ck_assert_ptr_nonnull(strstr(c->frames[1], "\"type\":\"joined\""));
	fake_ready_answer(&node, 0, 0);  /* welcomed once only */
	ck_assert_uint_eq(c->n_frames, 2);
}
END_TEST

START_TEST(test_a_second_session_of_a_user_also_waits_for_its_welcome)
{
	init_with_user_ready();
	fake_conn *a = open_as("alice", 0);
	fake_conn *b = open_as("alice", 0);
	ck_assert_uint_eq(node.n_calls, 3);
	ck_assert_str_eq(node.calls[2], "user_ready alice");
	ck_assert_uint_eq(node.n_ready, 2);
	fake_ready_answer(&node, 1, 0);
	ck_assert(fake_frame_has(b, "\"type\":\"welcome\""));
	ck_assert_uint_eq(a->n_frames, 0);
	fake_ready_answer(&node, 0, 0);
	ck_assert(fake_frame_has(a, "\"type\":\"welcome\""));
}
END_TEST

START_TEST(test_a_session_closed_before_the_user_is_ready_is_sent_nothing)
{
	init_with_user_ready();
	fake_conn *c = open_as("alice", 0);
	fake_closed(&node, c);
	ck_assert_uint_eq(confab_dict_count(node.b.sessions), 0);
	fake_ready_answer(&node, 0, 0);  /* the last reference: ASan sees a leak or reuse */
	ck_assert_uint_eq(c->n_frames, 0);
}
END_TEST

START_TEST(test_a_session_is_welcomed_anyway_when_the_backplane_cannot_tell)
{
	init_with_user_ready();
	fake_conn *a = open_as("alice", 0);
	fake_ready_answer(&node, 0, CONFAB_EUNAVAILABLE);
	ck_assert(fake_frame_has(a, "\"type\":\"welcome\""));

	node.ready_refuse = CONFAB_EUNAVAILABLE;  /* refused by the slot: at once */
	fake_conn *b = open_as("bob", 0);
	ck_assert_str_eq(node.calls[node.n_calls - 1], "user_ready bob");
	ck_assert(fake_frame_has(b, "\"type\":\"welcome\""));
	ck_assert_uint_eq(node.n_ready, 1);
}
END_TEST

START_TEST(test_closing_leaves_every_room_before_the_user_goes_offline)
{
	fake_node_init(&node, NULL, true);
	fake_conn *c = open_as("alice", 0);
	fake_recv(&node, c, "{\"type\":\"join\",\"room\":\"lobby\"}");
	fake_recv(&node, c, "{\"type\":\"join\",\"room\":\"den\"}");
	char id[96];
	strcpy(id, c->session->id);
	fake_closed(&node, c);
	int lobby = fake_call_index(&node, "room_leave lobby alice");
	int den = fake_call_index(&node, "room_leave den alice");
	int offline = fake_call_index(&node, "user_offline alice");
	ck_assert_int_ge(lobby, 0);
	ck_assert_int_ge(den, 0);
	ck_assert_int_gt(offline, lobby);
	ck_assert_int_gt(offline, den);
	ck_assert_ptr_null(session_find(&node.b, id));
	ck_assert_ptr_null(rooms_members(node.b.rooms, "lobby"));
}
END_TEST

START_TEST(test_a_user_over_max_sessions_per_user_is_refused_with_429)
{
	fake_node_init(&node, "max_sessions_per_user = 1", true);
	open_as("alice", 0);
	fake_auth_allow(&node, "alice", 0);
	fake_conn *c = fake_open(&node, "192.0.2.2");
	ck_assert(c->answered && !c->allowed);
	ck_assert_int_eq(c->status, 429);
	ck_assert_uint_eq(confab_dict_count(session_of_user(&node.b, "alice")), 1);
}
END_TEST

START_TEST(test_an_address_over_max_connections_per_address_is_refused_before_auth)
{
	fake_node_init(&node, "max_connections_per_address = 1", true);
	open_as("alice", 0);
	fake_auth_allow(&node, "bob", 0);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert(c->answered && !c->allowed);
	ck_assert_int_eq(c->status, 429);
	ck_assert_uint_eq(node.authenticates, 1);
	/* the count is given back when the connection ends */
	fake_closed(&node, c);
	fake_closed(&node, &node.conns[0]);
	ck_assert_uint_eq(confab_dict_count(node.b.addresses), 0);
}
END_TEST

START_TEST(test_a_session_is_closed_with_4001_when_its_credentials_expire)
{
	fake_node_init(&node, NULL, true);
	int64_t start = broker_now_ms();
	fake_conn *c = open_as("alice", start + 50);
	fake_conn *other = open_as("bob", start + 60000);
	ck_assert_int_eq(c->close_code, 0);
	fake_run_until(&node, &c->close_code, 2000);
	int64_t took = broker_now_ms() - start;
	ck_assert_int_eq(c->close_code, 4001);
	ck_assert_str_eq(c->close_reason, "token expired");
	ck_assert_int_ge(took, 50);
	ck_assert_int_lt(took, 1000);
	ck_assert_int_eq(other->close_code, 0);
	/* the transport's close ends it; the later deadline stays armed */
	fake_closed(&node, c);
	ck_assert_uint_eq(node.b.expiry.n, 1);
}
END_TEST

START_TEST(test_a_session_that_closes_takes_its_deadline_with_it)
{
	fake_node_init(&node, NULL, true);
	fake_conn *c = open_as("alice", broker_now_ms() + 50);
	ck_assert_uint_eq(node.b.expiry.n, 1);
	fake_closed(&node, c);
	ck_assert_uint_eq(node.b.expiry.n, 0);
	ck_assert(!uv_is_active((uv_handle_t *)&node.b.expiry.timer));
}
END_TEST

START_TEST(test_a_session_whose_credentials_already_expired_is_closed_at_once)
{
	fake_node_init(&node, NULL, true);
	fake_conn *c = open_as("alice", broker_now_ms() - 1000);
	ck_assert(fake_frame_has(c, "\"type\":\"welcome\""));
	fake_run_until(&node, &c->close_code, 500);
	ck_assert_int_eq(c->close_code, 4001);
}
END_TEST

/* ---- the heap alone ------------------------------------------------------ */

static expiry heap;
static uv_loop_t loop;
static expiry_entry entries[5];
static int fired[5], n_fired;

static void on_due(void *arg, expiry_entry *e)
{
	ck_assert_ptr_eq(arg, &heap);
	ck_assert_uint_eq(e->slot, 0);
	fired[n_fired++] = (int)(e - entries);
}

static void heap_setup(void)
{
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	expiry_init(&heap, &loop, on_due, &heap);
	n_fired = 0;
	memset(entries, 0, sizeof(entries));
}

static void heap_teardown(void)
{
	expiry_close(&heap);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	expiry_free(&heap);
}

START_TEST(test_deadlines_fire_in_order_and_removed_ones_never)
{
	int64_t now = broker_now_ms();
	int64_t at[5] = { now + 40, now + 10, now + 30, now + 20, now + 50 };
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(expiry_add(&heap, &entries[i], at[i]), 0);
	ck_assert_uint_eq(heap.n, 5);
	expiry_remove(&heap, &entries[3]);
	expiry_remove(&heap, &entries[3]);     /* twice: nothing */
	ck_assert_uint_eq(entries[3].slot, 0);
	ck_assert_uint_eq(heap.n, 4);
	uv_run(&loop, UV_RUN_DEFAULT);        /* returns when the timer stops */
	ck_assert_int_eq(n_fired, 4);
	ck_assert_int_eq(fired[0], 1);
	ck_assert_int_eq(fired[1], 2);
	ck_assert_int_eq(fired[2], 0);
	ck_assert_int_eq(fired[3], 4);
	ck_assert_int_ge(broker_now_ms(), now + 50);
}
END_TEST

START_TEST(test_removing_the_earliest_deadline_rearms_for_the_next)
{
	int64_t now = broker_now_ms();
	ck_assert_int_eq(expiry_add(&heap, &entries[0], now + 10), 0);
	ck_assert_int_eq(expiry_add(&heap, &entries[1], now + 30), 0);
	expiry_remove(&heap, &entries[0]);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(n_fired, 1);
	ck_assert_int_eq(fired[0], 1);
	ck_assert_int_ge(broker_now_ms(), now + 30);
	expiry_remove(&heap, &entries[1]);     /* fired: no longer armed */
	ck_assert_uint_eq(heap.n, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("flow");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_an_anonymous_client_is_admitted_as_a_guest_when_allowed);
	tcase_add_test(tc, test_an_anonymous_client_is_refused_with_401_when_not_allowed);
	tcase_add_test(tc, test_a_user_is_online_once_for_all_its_sessions_and_offline_after_the_last);
	tcase_add_test(tc, test_welcome_waits_until_the_backplane_has_the_user_online_everywhere);
	tcase_add_test(tc, test_a_request_before_the_welcome_is_served_and_its_reply_brings_the_welcome);
	tcase_add_test(tc, test_a_second_session_of_a_user_also_waits_for_its_welcome);
	tcase_add_test(tc, test_a_session_closed_before_the_user_is_ready_is_sent_nothing);
	tcase_add_test(tc, test_a_session_is_welcomed_anyway_when_the_backplane_cannot_tell);
	tcase_add_test(tc, test_closing_leaves_every_room_before_the_user_goes_offline);
	tcase_add_test(tc, test_a_user_over_max_sessions_per_user_is_refused_with_429);
	tcase_add_test(tc, test_an_address_over_max_connections_per_address_is_refused_before_auth);
	tcase_add_test(tc, test_a_session_is_closed_with_4001_when_its_credentials_expire);
	tcase_add_test(tc, test_a_session_that_closes_takes_its_deadline_with_it);
	tcase_add_test(tc, test_a_session_whose_credentials_already_expired_is_closed_at_once);
	suite_add_tcase(s, tc);

	TCase *th = tcase_create("expiry heap");
	tcase_add_checked_fixture(th, heap_setup, heap_teardown);
	tcase_set_timeout(th, 10);
	tcase_add_test(th, test_deadlines_fire_in_order_and_removed_ones_never);
	tcase_add_test(th, test_removing_the_earliest_deadline_rearms_for_the_next);
	suite_add_tcase(s, th);

	return fake_run_suite(s);
}
