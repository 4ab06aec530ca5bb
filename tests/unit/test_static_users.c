/* Unit tests for the `static` plugin's users-file parser
 * (plugins/static/static_users.c): what a file may hold, and the
 * "FILE:N: ..." line it is refused with otherwise (docs/auth-static.md).
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "static_users.h"
#include "unit_main.h"

#define SHA512 "$6$dx1DhqYFZR6C.RDW$2A4GHhtAHdzYObliDlYGyYvxbatutG9IpLGGCCgipJpNXow5w1QDTF7NAymccXWhgnk.9AnHQImZAg2gm/4BX0"
#define YESCRYPT "$y$j9T$QPyBRdE53n2Yq8BSkKinx1$nxcLLhX5s31WNEOT01Vqy1aiakosB.x5CTWWmmA2AK6"
#define NOT_A_HASH_OF(user) \
	"user " user ": not a SHA-512 ($6$) or yescrypt ($y$) hash as made by mkpasswd"

static char path[64];
static struct users_error err;

/* `text` written to a new file (path[]), read by the parser. */
static struct user_table *load(const char *text)
{
	int fd;
	FILE *f;

	snprintf(path, sizeof(path), "%s", "/tmp/confab-users-XXXXXX");
	ck_assert_int_ge(fd = mkstemp(path), 0);
	ck_assert_ptr_nonnull(f = fdopen(fd, "w"));
	ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	ck_assert_int_eq(fclose(f), 0);
	memset(&err, 0, sizeof(err));
	struct user_table *t = static_users_load(path, &err);
	unlink(path);
	return t;
}

/* `text` is refused at `line` with "FILE:line: why". */
static void refused(const char *text, int line, const char *why)
{
	char want[sizeof(err.text)];

	ck_assert_ptr_null(load(text));
	snprintf(want, sizeof(want), "%s:%d: %s", path, line, why);
	ck_assert_str_eq(err.text, want);
	ck_assert_int_eq(err.line, line);
}

START_TEST(good_lines_give_users_sorted_by_name_with_their_rooms)
{
	struct user_table *t = load("bob:" YESCRYPT ":support-*, lobby ,[a-c]?\n"
				    "alice:" SHA512 "\n"
				    "carol@example.org:team:" SHA512 ":#general\n");
	const struct user *u;

	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->n, 3);
	ck_assert_str_eq(t->users[0].name, "alice");
	ck_assert_str_eq(t->users[1].name, "bob");
	ck_assert_str_eq(t->users[2].name, "carol@example.org:team");

	ck_assert_ptr_nonnull(u = static_users_find(t, "alice"));
	ck_assert_str_eq(u->hash, SHA512);
	ck_assert_ptr_null(u->rooms);  /* every room */
	ck_assert_int_eq(u->line, 2);

	ck_assert_ptr_nonnull(u = static_users_find(t, "bob"));
	ck_assert_str_eq(u->hash, YESCRYPT);
	ck_assert_uint_eq(u->n_rooms, 3);
	ck_assert_str_eq(u->rooms[0], "support-*");
	ck_assert_str_eq(u->rooms[1], "lobby");
	ck_assert_str_eq(u->rooms[2], "[a-c]?");

	/* A name may hold ':': it ends at the first ":$". A '#' after the
	 * hash is part of a pattern, not a comment. */
	ck_assert_ptr_nonnull(u = static_users_find(t, "carol@example.org:team"));
	ck_assert_uint_eq(u->n_rooms, 1);
	ck_assert_str_eq(u->rooms[0], "#general");

	ck_assert_ptr_null(static_users_find(t, "Alice"));
	ck_assert_ptr_null(static_users_find(t, "dave"));
	static_users_unref(t);
}
END_TEST

START_TEST(comments_blank_lines_blanks_and_crlf_are_skipped)
{
	struct user_table *t = load("# users of the test\r\n"
				    "\n"
				    "   \t \r\n"
				    "   # indented comment\n"
				    "\talice:" SHA512 "  \r\n"
				    "#bob:" YESCRYPT "\n");

	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->n, 1);
	ck_assert_str_eq(t->users[0].name, "alice");
	ck_assert_str_eq(t->users[0].hash, SHA512);
	ck_assert_int_eq(t->users[0].line, 5);  /* lines are counted, skipped or not */
	static_users_unref(t);

	/* Nothing but comments: a table of no users, not an error. */
	ck_assert_ptr_nonnull(t = load("# nobody yet\n\n"));
	ck_assert_uint_eq(t->n, 0);
	ck_assert_ptr_null(static_users_find(t, "alice"));
	static_users_unref(t);
	ck_assert_ptr_nonnull(t = load(""));
	ck_assert_uint_eq(t->n, 0);
	static_users_unref(t);
}
END_TEST

START_TEST(a_missing_final_newline_is_no_matter)
{
	struct user_table *t = load("alice:" SHA512 "\nbob:" YESCRYPT ":lobby");

	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->n, 2);
	ck_assert_str_eq(static_users_find(t, "bob")->rooms[0], "lobby");
	static_users_unref(t);
	/* The error on such a last line still names it. */
	refused("alice:" SHA512 "\nbob", 2,
		"expected user:hash, the hash as made by `mkpasswd -m sha-512` or "
		"`mkpasswd -m yescrypt`");
}
END_TEST

START_TEST(bad_user_ids_are_refused_with_their_line)
{
	refused("# a comment\nal ice:" SHA512 "\n", 2,
		"'al ice' is not a valid user name (1-64 of A-Z a-z 0-9 _ . : - @)");
	refused("al/ice:" SHA512 "\n", 1,
		"'al/ice' is not a valid user name (1-64 of A-Z a-z 0-9 _ . : - @)");
	refused(":" SHA512 "\n", 1, "'' is not a valid user name (1-64 of A-Z a-z 0-9 _ . : - @)");
	refused("guest-1:" SHA512 "\n", 1,
		"'guest-1': names beginning with 'guest-' are the broker's, for anonymous clients");
	refused("GUEST-x:" SHA512 "\n", 1,
		"'GUEST-x': names beginning with 'guest-' are the broker's, for anonymous clients");

	/* 64 bytes is the longest name; a longer one is quoted to 64. */
	char text[512], name[80], why[256];
	memset(name, 'n', 65);
	name[65] = '\0';
	snprintf(text, sizeof(text), "%.64s:%s\n", name, SHA512);
	struct user_table *t = load(text);
	ck_assert_ptr_nonnull(t);
	static_users_unref(t);
	snprintf(text, sizeof(text), "%s:%s\n", name, SHA512);
	snprintf(why, sizeof(why), "'%.64s' is not a valid user name (1-64 of A-Z a-z 0-9 _ . : - @)",
		 name);
	refused(text, 1, why);
}
END_TEST

START_TEST(a_user_listed_twice_is_refused_at_the_second_line)
{
	refused("alice:" SHA512 "\nbob:" YESCRYPT "\n# again\nalice:" YESCRYPT ":lobby\n", 4,
		"user alice is listed twice (lines 1 and 4)");
	/* Names are case sensitive: these are two users. */
	struct user_table *t = load("alice:" SHA512 "\nAlice:" SHA512 "\n");
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->n, 2);
	static_users_unref(t);
}
END_TEST

START_TEST(hashes_other_than_sha512_and_yescrypt_are_refused)
{
	refused("alice:secret\n", 1,
		"expected user:hash, the hash as made by `mkpasswd -m sha-512` or "
		"`mkpasswd -m yescrypt`");
	refused("alice:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0\n", 1, NOT_A_HASH_OF("alice"));
	refused("alice:$5$saltsalt$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZF7dAw3sD\n", 1,
		NOT_A_HASH_OF("alice"));
	refused("alice:$2b$05$abcdefghijklmnopqrstuuQ8ezAPmAEmcyK/kYW8zMMrTMFtG0bfS\n", 1,
		NOT_A_HASH_OF("alice"));
	refused("alice:$6$\n", 1, NOT_A_HASH_OF("alice"));          /* no salt, no hash */
	refused("alice:$6$dx1DhqYFZR6C.RDW$\n", 1, NOT_A_HASH_OF("alice"));  /* truncated */
	refused("alice:$6$dx1Dhq*FZR6C.RDW$2A4GHhtAHdz\n", 1, NOT_A_HASH_OF("alice"));
	refused("alice:$y$j9T$\n", 1, NOT_A_HASH_OF("alice"));
	refused("alice:$Y$j9T$QPyBRdE53n2Yq8BSkKinx1$nxcLLhX5s31WNEOT01Vqy\n", 1,
		NOT_A_HASH_OF("alice"));
}
END_TEST

START_TEST(over_long_lines_are_read_whole)
{
	/* There is no line limit: a name or hash too long for its rule is
	 * refused by that rule, and a long list of patterns is read. */
	size_t big = 100000;
	char *text = malloc(big + 200), *p;

	ck_assert_ptr_nonnull(text);
	p = text + sprintf(text, "alice:" SHA512 ":");
	for (size_t i = 0; i < 10000; i++)
		p += sprintf(p, "room%zu,", i);
	sprintf(p - 1, "\n");
	struct user_table *t = load(text);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->users[0].n_rooms, 10000);
	ck_assert_str_eq(t->users[0].rooms[9999], "room9999");
	static_users_unref(t);

	/* A hash of CRYPT_OUTPUT_SIZE bytes or more is not one. */
	p = text + sprintf(text, "# first\nbob:$6$dx1DhqYFZR6C.RDW$");
	memset(p, 'x', CRYPT_OUTPUT_SIZE);
	strcpy(p + CRYPT_OUTPUT_SIZE, "\n");
	refused(text, 2, NOT_A_HASH_OF("bob"));

	/* A name of 50,000 bytes is quoted to 64. */
	memset(text, 'n', 50000);
	strcpy(text + 50000, ":" SHA512 "\n");
	refused(text, 1, "'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn' "
		"is not a valid user name (1-64 of A-Z a-z 0-9 _ . : - @)");
	free(text);
}
END_TEST

START_TEST(empty_or_spaced_room_patterns_are_refused)
{
	const char *why = "user alice: room patterns are separated by commas and may not be "
			  "empty or hold spaces (leave out the last ':' for every room)";

	refused("alice:" SHA512 ":\n", 1, why);
	refused("alice:" SHA512 ":lobby,,support\n", 1, why);
	refused("alice:" SHA512 ":lobby,\n", 1, why);
	refused("alice:" SHA512 ":lob by\n", 1, why);
}
END_TEST

START_TEST(a_file_that_cannot_be_read_is_refused_as_a_whole)
{
	struct users_error e;

	ck_assert_ptr_null(static_users_load("/nonexistent/confab-users", &e));
	ck_assert_int_eq(e.line, 0);
	ck_assert_str_eq(e.text, "cannot read /nonexistent/confab-users: No such file or directory");
}
END_TEST

START_TEST(an_unknown_name_gets_a_real_users_hash_the_same_each_time)
{
	struct user_table *t = load("alice:" SHA512 "\nbob:" YESCRYPT "\n");
	const char *decoy = static_users_decoy(t, "mallory");

	ck_assert(strcmp(decoy, SHA512) == 0 || strcmp(decoy, YESCRYPT) == 0);
	ck_assert_ptr_eq(static_users_decoy(t, "mallory"), decoy);
	static_users_unref(t);
	static_users_unref(NULL);
}
END_TEST

/* A reload swaps the instance's table for a new reading; a check in
 * flight holds a reference to the old one, which must outlive the swap
 * (ASan sees a use after free otherwise) and go with that reference. */
START_TEST(a_table_held_by_a_check_outlives_the_swap_to_a_new_reading)
{
	struct user_table *running = load("alice:" SHA512 "\nbob:" YESCRYPT "\n");
	char old_path[sizeof(path)];
	struct user_table *held, *next;
	const struct user *bob;

	ck_assert_ptr_nonnull(running);
	ck_assert_str_eq(running->path, path);
	snprintf(old_path, sizeof(old_path), "%s", path);
	held = running;
	held->refs++;                       /* a check begins with bob */
	bob = static_users_find(held, "bob");
	ck_assert_ptr_nonnull(bob);

	next = load("alice:" SHA512 "\ncarol:" SHA512 "\n");
	ck_assert_ptr_nonnull(next);
	static_users_unref(running);        /* reload_finish(apply) */
	running = next;

	ck_assert_ptr_null(static_users_find(running, "bob"));
	ck_assert_ptr_nonnull(static_users_find(running, "carol"));
	ck_assert_str_eq(bob->name, "bob");  /* the check's user is still whole */
	ck_assert_str_eq(bob->hash, YESCRYPT);
	ck_assert_str_eq(held->path, old_path);
	static_users_unref(held);           /* the check ends: the old table goes */
	static_users_unref(running);        /* destroy */
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		good_lines_give_users_sorted_by_name_with_their_rooms,
		comments_blank_lines_blanks_and_crlf_are_skipped,
		a_missing_final_newline_is_no_matter,
		bad_user_ids_are_refused_with_their_line,
		a_user_listed_twice_is_refused_at_the_second_line,
		hashes_other_than_sha512_and_yescrypt_are_refused,
		over_long_lines_are_read_whole,
		empty_or_spaced_room_patterns_are_refused,
		a_file_that_cannot_be_read_is_refused_as_a_whole,
		an_unknown_name_gets_a_real_users_hash_the_same_each_time,
		a_table_held_by_a_check_outlives_the_swap_to_a_new_reading,
	};

	return unit_main("static_users", tests, sizeof(tests) / sizeof(*tests), 0);
}
