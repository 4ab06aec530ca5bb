/* Unit tests for routing (core/router.c): a client's join, leave, send and
 * direct become calls on a fake backplane and replies; envelopes the
 * backplane delivers become frames for the local members. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fake_node.h"
#include "host.h"
#include "protocol.h"
#include "session.h"

static fake_node node;
static fake_conn *alice, *bob;

static fake_conn *open_as(const char *user)
{
	fake_auth_allow(&node, user, 0);
	fake_conn *c = fake_open(&node, "192.0.2.1");
	ck_assert(c->allowed);
	return c;
}

static void setup(void)
{
	fake_node_init(&node, NULL, true);
	alice = open_as("alice");
	bob = open_as("bob");
	node.n_calls = 0;
}

static void teardown(void)
{
	fake_node_free(&node);
}

static void deliver(const confab_envelope *env)
{
	host_table(CONFAB_KIND_BACKPLANE)->backplane->deliver(&node.backplane, env);
}

START_TEST(test_a_join_registers_the_user_in_the_room_on_the_backplane)
{
	fake_recv(&node, alice, "{\"type\":\"join\",\"room\":\"lobby\",\"ref\":1}");
	ck_assert_uint_eq(node.n_calls, 1);
	ck_assert_str_eq(node.calls[0], "room_join lobby alice");
	ck_assert_ptr_nonnull(strstr(fake_last_frame(alice), "\"type\":\"joined\""));
	ck_assert_ptr_nonnull(strstr(fake_last_frame(alice), "\"ref\":1"));
	ck_assert(rooms_is_member(node.b.rooms, "lobby", alice->session->id));
}
END_TEST

START_TEST(test_a_second_session_of_the_user_joins_without_telling_the_backplane)
{
	fake_conn *again = open_as("alice");
	node.n_calls = 0;
	fake_recv(&node, alice, "{\"type\":\"join\",\"room\":\"lobby\"}");
	fake_recv(&node, again, "{\"type\":\"join\",\"room\":\"lobby\"}");
	ck_assert_uint_eq(node.n_calls, 1);
	fake_recv(&node, alice, "{\"type\":\"leave\",\"room\":\"lobby\"}");
	ck_assert_uint_eq(node.n_calls, 1);
	fake_recv(&node, again, "{\"type\":\"leave\",\"room\":\"lobby\"}");
	ck_assert_uint_eq(node.n_calls, 2);
	ck_assert_str_eq(node.calls[1], "room_leave lobby alice");
	ck_assert_ptr_nonnull(strstr(fake_last_frame(again), "\"type\":\"left\""));
}
END_TEST

START_TEST(test_a_send_is_published_and_acknowledged_with_its_seq)
{
	fake_recv(&node, alice, "{\"type\":\"join\",\"room\":\"lobby\"}");
	fake_recv(&node, alice, "{\"type\":\"send\",\"room\":\"lobby\",\"body\":{\"t\":\"hi\"},\"ref\":7}");
	ck_assert_str_eq(node.calls[1], "publish lobby {\"t\":\"hi\"}");
	ck_assert_ptr_nonnull(strstr(fake_last_frame(alice), "\"type\":\"ack\""));
	ck_assert_ptr_nonnull(strstr(fake_last_frame(alice), "\"seq\":1"));
	ck_assert_ptr_nonnull(strstr(fake_last_frame(alice), "\"ref\":7"));
	/* counted: one send received, one ack, one publish and send->ack timed */
	broker *b = &node.b;
	ck_assert_int_eq(b->metrics.series[b->counters.received + REQ_SEND].value, 1);
	ck_assert_int_eq(b->metrics.series[b->counters.acks].value, 1);
	ck_assert_uint_eq(b->metrics.series[b->counters.publish_seconds].count, 1);
	ck_assert_uint_eq(b->metrics.series[b->counters.send_ack_seconds].count, 1);
}
END_TEST

START_TEST(test_a_send_to_a_room_not_joined_is_refused_without_the_backplane)
{
	fake_recv(&node, alice, "{\"type\":\"send\",\"room\":\"lobby\",\"body\":1}");
	ck_assert_uint_eq(node.n_calls, 0);
	ck_assert_ptr_nonnull(strstr(fake_last_frame(alice), "\"code\":\"not_member\""));
	broker *b = &node.b;
	ck_assert_int_eq(b->metrics.series[b->counters.errors + 1].value, 1);  /* not_member */
	ck_assert_int_eq(b->metrics.series[b->counters.acks].value, 0);
}
END_TEST

START_TEST(test_a_direct_message_goes_to_the_backplane_for_the_addressee)
{
	fake_recv(&node, alice, "{\"type\":\"direct\",\"to\":\"bob\",\"body\":\"psst\"}");
	ck_assert_uint_eq(node.n_calls, 1);
	ck_assert_str_eq(node.calls[0], "direct bob \"psst\"");
	ck_assert_ptr_nonnull(strstr(fake_last_frame(alice), "\"type\":\"ack\""));
}
END_TEST

START_TEST(test_a_delivered_message_reaches_every_member_but_its_sender)
{
	fake_recv(&node, alice, "{\"type\":\"join\",\"room\":\"lobby\"}");
	fake_recv(&node, bob, "{\"type\":\"join\",\"room\":\"lobby\"}");
	size_t alice_frames = alice->n_frames;
	confab_envelope env = { .size = sizeof(env), .kind = CONFAB_ENV_MESSAGE, .room = "lobby",
				.from = "alice", .id = "m1", .origin = alice->session->id,
				.body = "\"hello\"", .body_len = 7, .seq = 3, .ts = 1 };
	deliver(&env);
	ck_assert_uint_eq(alice->n_frames, alice_frames);
	ck_assert_ptr_nonnull(strstr(fake_last_frame(bob), "\"type\":\"message\""));
	ck_assert_ptr_nonnull(strstr(fake_last_frame(bob), "\"body\":\"hello\""));
	/* one delivery: bob's; the sender's own session is skipped */
	ck_assert_int_eq(node.b.metrics.series[node.b.counters.delivered].value, 1);
}
END_TEST

START_TEST(test_a_delivered_direct_message_reaches_every_session_of_the_addressee)
{
	fake_conn *bob2 = open_as("bob");
	confab_envelope env = { .size = sizeof(env), .kind = CONFAB_ENV_DIRECT, .from = "alice",
				.to = "bob", .id = "m2", .origin = "n2.r.s9", .body = "1",
				.body_len = 1, .ts = 1 };
	deliver(&env);
	ck_assert_ptr_nonnull(strstr(fake_last_frame(bob), "\"type\":\"direct\""));
	ck_assert_ptr_nonnull(strstr(fake_last_frame(bob2), "\"type\":\"direct\""));
	ck_assert_ptr_null(strstr(fake_last_frame(alice), "\"type\":\"direct\""));
}
END_TEST

START_TEST(test_an_answer_for_a_session_that_closed_meanwhile_is_dropped)
{
	node.defer_publish = true;
	fake_recv(&node, alice, "{\"type\":\"join\",\"room\":\"lobby\"}");
	fake_recv(&node, alice, "{\"type\":\"send\",\"room\":\"lobby\",\"body\":1}");
	ck_assert_ptr_nonnull(node.publish_done);
	size_t frames = alice->n_frames;
	fake_closed(&node, alice);      /* the session is freed here */
	node.publish_done(node.publish_arg, 0, 1);
	ck_assert_uint_eq(alice->n_frames, frames);
	ck_assert_uint_eq(bob->n_frames, 1);   /* its welcome only */
}
END_TEST

START_TEST(test_a_request_while_the_backplane_is_down_is_answered_unavailable)
{
	fake_recv(&node, alice, "{\"type\":\"join\",\"room\":\"lobby\"}");
	host_table(CONFAB_KIND_BACKPLANE)->backplane->health(&node.backplane, false, "test");
	fake_recv(&node, alice, "{\"type\":\"send\",\"room\":\"lobby\",\"body\":1}");
	ck_assert_uint_eq(node.n_calls, 1);
	ck_assert_ptr_nonnull(strstr(fake_last_frame(alice), "\"code\":\"unavailable\""));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("router");
	TCase *tc = tcase_create("routing");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_a_join_registers_the_user_in_the_room_on_the_backplane);
	tcase_add_test(tc, test_a_second_session_of_the_user_joins_without_telling_the_backplane);
	tcase_add_test(tc, test_a_send_is_published_and_acknowledged_with_its_seq);
	tcase_add_test(tc, test_a_send_to_a_room_not_joined_is_refused_without_the_backplane);
	tcase_add_test(tc, test_a_direct_message_goes_to_the_backplane_for_the_addressee);
	tcase_add_test(tc, test_a_delivered_message_reaches_every_member_but_its_sender);
	tcase_add_test(tc, test_a_delivered_direct_message_reaches_every_session_of_the_addressee);
	tcase_add_test(tc, test_an_answer_for_a_session_that_closed_meanwhile_is_dropped);
	tcase_add_test(tc, test_a_request_while_the_backplane_is_down_is_answered_unavailable);
	suite_add_tcase(s, tc);

	return fake_run_suite(s);
}
