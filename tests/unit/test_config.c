/* Unit tests for core/config.c: broker.ini as issue 2, section 5 describes
 * it. Every bad configuration returns CONFAB_EINVAL and logs exactly one
 * error line naming the file, the line, the section and the key; the tests
 * capture stderr to read that line.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* The sample of issue 2, section 5, byte for byte (inline comments too). */
static const char sample_ini[] =
	"[broker]\n"
	"node_id = a                 ; unique per node; default <hostname>-<pid>\n"
	"plugin_dir = /path/to/plugins ; default: the installed $(pkglibdir)\n"
	"plugins = ws                ; the chain, loaded in this order; a name is plugin_dir/NAME.so, a name with '/' is a path\n"
	"allow_anonymous = true      ; admit clients no auth plugin admits, as guest-XXXXXXXX\n"
	"log_level = info\n"
	"max_message_bytes = 65536\n"
	"history_size = 100          ; messages kept per room\n"
	"\n"
	"[ws]                        ; each plugin reads the section named after it\n"
	"listen = 127.0.0.1:8080\n";

/* ---- helpers ------------------------------------------------------------ */

/* What one config_load_string call returned and logged. */
typedef struct outcome {
	int rc;
	char log[4096];
	int lines;      /* lines written to stderr */
} outcome;

/* Runs config_load_string (or config_load when `text` is NULL and `name` is
 * a path) with stderr redirected to a temporary file. */
static outcome load_capturing(const char *text, const char *name, config *cfg)
{
	outcome out;
	memset(&out, 0, sizeof(out));

	const char *tmpdir = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/confab-test-config-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	int fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp(%s) failed", path);
	unlink(path);

	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);

	out.rc = text ? config_load_string(text, name, cfg) : config_load(name, cfg);

	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ssize_t n = read(fd, out.log, sizeof(out.log) - 1);
	close(fd);
	ck_assert_int_ge(n, 0);
	out.log[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if (out.log[i] == '\n')
			out.lines++;
	/* Show what was logged in the test's own output too. */
	fputs(out.log, stderr);
	return out;
}

/* Loads `text` expecting success and no log output. */
static void load_ok(const char *text, config *cfg)
{
	outcome o = load_capturing(text, "test.ini", cfg);
	ck_assert_msg(o.rc == 0, "config_load_string failed (%d) on:\n%s\nlogged: %s",
		      o.rc, text, o.log);
	ck_assert_msg(o.lines == 0, "a good file logged: %s", o.log);
}

/* Loads `text` (named `name`) expecting CONFAB_EINVAL and one error line
 * containing each of the NULL-terminated fragments. */
static void load_rejected(const char *text, const char *name, ...)
	__attribute__((sentinel));
static void load_rejected(const char *text, const char *name, ...)
{
	config cfg;
	outcome o = load_capturing(text, name, &cfg);
	if (o.rc == 0)
		config_free(&cfg);
	ck_assert_msg(o.rc == CONFAB_EINVAL, "expected CONFAB_EINVAL, got %d on:\n%s",
		      o.rc, text ? text : name);
	ck_assert_msg(o.lines == 1, "expected one log line, got %d:\n%s", o.lines, o.log);
	ck_assert_msg(strstr(o.log, "error") != NULL, "not logged as an error: %s", o.log);

	va_list ap;
	va_start(ap, name);
	for (const char *want; (want = va_arg(ap, const char *)) != NULL;)
		ck_assert_msg(strstr(o.log, want) != NULL, "the error line lacks \"%s\": %s",
			      want, o.log);
	va_end(ap);

	/* Nothing is left behind to free. */
	ck_assert_ptr_null(cfg.sections);
	ck_assert_ptr_null(cfg.path);
	ck_assert_ptr_null(cfg.broker.plugins);
	ck_assert_ptr_null(cfg.broker.node_id);
}

static const char *entry_value(config *cfg, const char *section, const char *key)
{
	config_section *s = config_section_find(cfg, section);
	ck_assert_msg(s != NULL, "no section [%s]", section);
	config_entry *e = config_section_get(s, key);
	ck_assert_msg(e != NULL, "no key %s in [%s]", key, section);
	return e->value;
}

/* ---- defaults and parsing ----------------------------------------------- */

START_TEST(test_only_a_plugin_chain_gives_every_default)
{
	config cfg;
	load_ok("[broker]\nplugins = ws\n", &cfg);
	broker_settings *b = &cfg.broker;

	ck_assert_ptr_nonnull(b->plugin_dir);
	ck_assert_msg(*b->plugin_dir != '\0', "the compiled-in plugin_dir is empty");
	ck_assert(b->allow_anonymous);
	ck_assert_int_eq(b->log_level, CONFAB_LOG_INFO);
	ck_assert_uint_eq(b->max_message_bytes, 65536);
	ck_assert_uint_eq(b->history_size, 100);
	ck_assert_uint_eq(b->n_plugins, 1);
	ck_assert_str_eq(b->plugins[0], "ws");
	config_free(&cfg);
}
END_TEST

START_TEST(test_default_node_id_is_host_dash_pid_and_a_valid_node_id)
{
	config cfg;
	load_ok("[broker]\nplugins = ws\n", &cfg);
	const char *id = cfg.broker.node_id;
	ck_assert_ptr_nonnull(id);

	char suffix[32];
	snprintf(suffix, sizeof(suffix), "-%ld", (long)getpid());
	size_t n = strlen(id), ns = strlen(suffix);
	ck_assert_msg(n > ns && strcmp(id + n - ns, suffix) == 0,
		      "node_id '%s' does not end with '%s'", id, suffix);
	ck_assert_msg(n <= 64, "node_id '%s' is longer than 64", id);

	char host[256] = "";
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	bool plain = *host != '\0';
	for (const char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			plain = false;
	if (plain && strlen(host) < 40)
		ck_assert_msg(strncmp(id, host, strlen(host)) == 0 && id[strlen(host)] == '-',
			      "node_id '%s' does not start with the host name '%s'", id, host);

	/* What the default produces is accepted when written out explicitly. */
	char text[160];
	snprintf(text, sizeof(text), "[broker]\nnode_id = %s\nplugins = ws\n", id);
	config again;
	load_ok(text, &again);
	ck_assert_str_eq(again.broker.node_id, id);
	config_free(&again);
	config_free(&cfg);
}
END_TEST

START_TEST(test_issue_sample_broker_ini_with_inline_comments_parses)
{
	config cfg;
	load_ok(sample_ini, &cfg);
	broker_settings *b = &cfg.broker;

	ck_assert_str_eq(cfg.path, "test.ini");
	ck_assert_str_eq(b->node_id, "a");
	ck_assert_str_eq(b->plugin_dir, "/path/to/plugins");
	ck_assert_uint_eq(b->n_plugins, 1);
	ck_assert_str_eq(b->plugins[0], "ws");
	ck_assert(b->allow_anonymous);
	ck_assert_int_eq(b->log_level, CONFAB_LOG_INFO);
	ck_assert_uint_eq(b->max_message_bytes, 65536);
	ck_assert_uint_eq(b->history_size, 100);

	ck_assert_uint_eq(cfg.n_sections, 2);
	ck_assert_str_eq(entry_value(&cfg, "ws", "listen"), "127.0.0.1:8080");
	config_section *ws = config_section_find(&cfg, "ws");
	ck_assert_int_eq(ws->entries[0].line, 11);
	config_free(&cfg);
}
END_TEST

/* Errors about a missing key point at the section, so a section's line is
 * the line of its [header], not of its first key. */
START_TEST(test_section_line_is_the_line_of_its_header)
{
	config cfg;
	load_ok(sample_ini, &cfg);
	ck_assert_int_eq(config_section_find(&cfg, "broker")->line, 1);
	ck_assert_int_eq(config_section_find(&cfg, "ws")->line, 10);
	config_free(&cfg);

	load_ok("[broker]\n; comment\n\nplugins = ws\n", &cfg);
	ck_assert_int_eq(config_section_find(&cfg, "broker")->line, 1);
	config_free(&cfg);
}
END_TEST

/* A line longer than the INI reader's buffer (a long chain of paths, or a
 * long comment) is either read whole or refused naming its own line. */
START_TEST(test_long_line_is_read_whole_or_rejected_naming_its_line)
{
	char chain[400] = "";
	for (int i = 0; i < 6; i++)
		strcat(chain, "/usr/lib/x86_64-linux-gnu/confab/plugin-number.so ");
	char text[1024];
	snprintf(text, sizeof(text), "[broker]\nplugins = %s\nlog_level = info\n", chain);

	config cfg;
	outcome o = load_capturing(text, "long.ini", &cfg);
	if (o.rc == 0) {
		ck_assert_uint_eq(cfg.broker.n_plugins, 6);
		config_free(&cfg);
	} else {
		ck_assert_int_eq(o.rc, CONFAB_EINVAL);
		ck_assert_int_eq(o.lines, 1);
		ck_assert_msg(strstr(o.log, "long.ini:2:") != NULL,
			      "the error does not name line 2: %s", o.log);
	}
}
END_TEST

START_TEST(test_issue_sample_loads_from_a_real_file)
{
	const char *tmpdir = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/confab-test-broker-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, sample_ini, strlen(sample_ini)), (ssize_t)strlen(sample_ini));
	close(fd);

	config cfg;
	outcome o = load_capturing(NULL, path, &cfg);
	unlink(path);
	ck_assert_msg(o.rc == 0, "config_load failed: %s", o.log);
	ck_assert_str_eq(cfg.path, path);
	ck_assert_str_eq(cfg.broker.node_id, "a");
	ck_assert_str_eq(cfg.broker.plugins[0], "ws");
	ck_assert_str_eq(entry_value(&cfg, "ws", "listen"), "127.0.0.1:8080");
	config_free(&cfg);
}
END_TEST

START_TEST(test_every_broker_key_is_parsed)
{
	config cfg;
	load_ok("[broker]\n"
		"node_id = node-7.x_Y\n"
		"plugin_dir = /opt/confab/plugins\n"
		"plugins = ws, allowlist /x/y.so\n"
		"allow_anonymous = false\n"
		"log_level = debug\n"
		"max_message_bytes = 1024\n"
		"history_size = 0\n", &cfg);
	broker_settings *b = &cfg.broker;
	ck_assert_str_eq(b->node_id, "node-7.x_Y");
	ck_assert_str_eq(b->plugin_dir, "/opt/confab/plugins");
	ck_assert_uint_eq(b->n_plugins, 3);
	ck_assert_str_eq(b->plugins[0], "ws");
	ck_assert_str_eq(b->plugins[1], "allowlist");
	ck_assert_str_eq(b->plugins[2], "/x/y.so");
	ck_assert(!b->allow_anonymous);
	ck_assert_int_eq(b->log_level, CONFAB_LOG_DEBUG);
	ck_assert_uint_eq(b->max_message_bytes, 1024);
	ck_assert_uint_eq(b->history_size, 0);
	config_free(&cfg);
}
END_TEST

START_TEST(test_allow_anonymous_accepts_the_usual_boolean_words)
{
	static const struct { const char *text; bool value; } cases[] = {
		{ "true", true }, { "yes", true }, { "on", true }, { "1", true }, { "TRUE", true },
		{ "false", false }, { "no", false }, { "off", false }, { "0", false }, { "False", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "[broker]\nplugins = ws\nallow_anonymous = %s\n",
			 cases[i].text);
		config cfg;
		load_ok(text, &cfg);
		ck_assert_msg(cfg.broker.allow_anonymous == cases[i].value,
			      "allow_anonymous = %s read as %d", cases[i].text,
			      cfg.broker.allow_anonymous);
		config_free(&cfg);
	}
}
END_TEST

START_TEST(test_every_log_level_is_accepted)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++) {
		char text[96];
		snprintf(text, sizeof(text), "[broker]\nplugins = ws\nlog_level = %s\n", names[i]);
		config cfg;
		load_ok(text, &cfg);
		ck_assert_int_eq(cfg.broker.log_level, i);
		ck_assert_str_eq(config_broker_text(&cfg, "log_level"), names[i]);
		config_free(&cfg);
	}
}
END_TEST

START_TEST(test_number_limits_are_inclusive)
{
	config cfg;
	load_ok("[broker]\nplugins = ws\nmax_message_bytes = 64\nhistory_size = 100000\n", &cfg);
	ck_assert_uint_eq(cfg.broker.max_message_bytes, 64);
	ck_assert_uint_eq(cfg.broker.history_size, 100000);
	config_free(&cfg);

	load_ok("[broker]\nplugins = ws\nmax_message_bytes = 16777216\n", &cfg);
	ck_assert_uint_eq(cfg.broker.max_message_bytes, 16777216);
	config_free(&cfg);
}
END_TEST

START_TEST(test_plugin_chain_splits_on_commas_and_spaces_keeping_paths)
{
	config cfg;
	load_ok("[broker]\nplugins = ws,allowlist  ,\t/usr/lib/confab/ws.so ./rel/z.so,,redis\n",
		&cfg);
	broker_settings *b = &cfg.broker;
	ck_assert_uint_eq(b->n_plugins, 5);
	ck_assert_str_eq(b->plugins[0], "ws");
	ck_assert_str_eq(b->plugins[1], "allowlist");
	ck_assert_str_eq(b->plugins[2], "/usr/lib/confab/ws.so");
	ck_assert_str_eq(b->plugins[3], "./rel/z.so");
	ck_assert_str_eq(b->plugins[4], "redis");
	config_free(&cfg);
}
END_TEST

START_TEST(test_value_continues_on_an_indented_next_line)
{
	config cfg;
	load_ok("[broker]\n"
		"plugins = ws,\n"
		"    allowlist ; an inline comment on a continuation line\n"
		"    /x/y.so\n"
		"log_level = warn\n"
		"[ws]\n"
		"listen = 127.0.0.1:8080\n", &cfg);
	broker_settings *b = &cfg.broker;
	ck_assert_uint_eq(b->n_plugins, 3);
	ck_assert_str_eq(b->plugins[0], "ws");
	ck_assert_str_eq(b->plugins[1], "allowlist");
	ck_assert_str_eq(b->plugins[2], "/x/y.so");
	ck_assert_int_eq(b->log_level, CONFAB_LOG_WARN);
	ck_assert_str_eq(config_broker_text(&cfg, "plugins"), "ws, allowlist /x/y.so");
	/* the key keeps the line it started on */
	config_entry *e = config_section_get(config_section_find(&cfg, "broker"), "plugins");
	ck_assert_int_eq(e->line, 2);
	ck_assert_str_eq(entry_value(&cfg, "ws", "listen"), "127.0.0.1:8080");
	config_free(&cfg);
}
END_TEST

START_TEST(test_plugin_sections_are_kept_as_written)
{
	config cfg;
	load_ok("; a comment\n"
		"[broker]\n"
		"plugins = ws allowlist\n"
		"[ws]\n"
		"listen = 127.0.0.1:8080\n"
		"anything = goes here\n"
		"[allowlist]\n"
		"users = alice bob\n", &cfg);
	ck_assert_uint_eq(cfg.n_sections, 3);
	ck_assert_str_eq(entry_value(&cfg, "ws", "anything"), "goes here");
	ck_assert_str_eq(entry_value(&cfg, "allowlist", "users"), "alice bob");
	config_section *al = config_section_find(&cfg, "allowlist");
	ck_assert_int_eq(al->entries[0].line, 8);
	config_free(&cfg);
}
END_TEST

START_TEST(test_room_ttl_and_max_rooms_have_defaults_and_are_read)
{
	config cfg;
	load_ok("[broker]\nplugins = ws\n", &cfg);
	ck_assert_uint_eq(cfg.broker.room_ttl, 86400);
	ck_assert_uint_eq(cfg.broker.max_rooms, 100000);
	ck_assert_str_eq(config_broker_text(&cfg, "room_ttl"), "86400");
	config_free(&cfg);

	load_ok("[broker]\nplugins = ws\nroom_ttl = 0\nmax_rooms = 3\n", &cfg);
	ck_assert_uint_eq(cfg.broker.room_ttl, 0);
	ck_assert_str_eq(config_broker_text(&cfg, "room_ttl"), "0");
	ck_assert_uint_eq(cfg.broker.max_rooms, 3);
	config_free(&cfg);

	load_rejected("[broker]\nplugins = ws\nroom_ttl = -1\n", "ttl.ini",
		      "ttl.ini:3:", "[broker]", "room_ttl", NULL);
}
END_TEST

START_TEST(test_idem_window_defaults_to_two_minutes_and_is_checked)
{
	config cfg;
	load_ok("[broker]\nplugins = ws\n", &cfg);
	ck_assert_uint_eq(cfg.broker.idem_window, 120);
	ck_assert_str_eq(config_broker_text(&cfg, "idem_window"), "120");
	config_free(&cfg);

	load_ok("[broker]\nplugins = ws\nidem_window = 4\n", &cfg);
	ck_assert_str_eq(config_broker_text(&cfg, "idem_window"), "4");
	config_free(&cfg);

	load_rejected("[broker]\nplugins = ws\nidem_window = 0\n", "idem.ini",
		      "idem.ini:3:", "[broker]", "idem_window", NULL);
	load_rejected("[broker]\nplugins = ws\nidem_window = 86401\n", "idem.ini",
		      "idem.ini:3:", "[broker]", "idem_window", NULL);
}
END_TEST

START_TEST(test_limits_have_defaults_and_are_read_and_checked)
{
	config cfg;
	load_ok("[broker]\nplugins = ws\n", &cfg);
	broker_settings *b = &cfg.broker;
	ck_assert_uint_eq(b->rate_limit, 50);
	ck_assert_uint_eq(b->rate_burst, 100);
	ck_assert_uint_eq(b->flood_close, 200);
	ck_assert_uint_eq(b->max_rooms_per_session, 100);
	ck_assert_uint_eq(b->max_sessions_per_user, 20);
	ck_assert_uint_eq(b->max_connections_per_address, 100);
	ck_assert_uint_eq(b->idle_timeout, 60);
	ck_assert_uint_eq(b->max_json_depth, 32);
	ck_assert_uint_eq(b->n_allowed_origins, 0);
	ck_assert_str_eq(config_broker_text(&cfg, "idle_timeout"), "60");
	config_free(&cfg);

	load_ok("[broker]\nplugins = ws\nrate_limit = 0\nidle_timeout = 5\n"
		"allowed_origins = https://a.example, https://b.example\n", &cfg);
	ck_assert_uint_eq(cfg.broker.rate_limit, 0);
	ck_assert_str_eq(config_broker_text(&cfg, "idle_timeout"), "5");
	ck_assert_uint_eq(cfg.broker.n_allowed_origins, 2);
	ck_assert_str_eq(cfg.broker.allowed_origins[1], "https://b.example");
	config_free(&cfg);

	load_rejected("[broker]\nplugins = ws\nrate_burst = 0\n", "burst.ini",
		      "burst.ini:3:", "[broker]", "rate_burst", NULL);
	load_rejected("[broker]\nplugins = ws\nmax_json_depth = deep\n", "depth.ini",
		      "depth.ini:3:", "[broker]", "max_json_depth", NULL);
}
END_TEST

START_TEST(test_auth_bounds_have_defaults_and_are_read_and_checked)
{
	config cfg;
	load_ok("[broker]\nplugins = ws\n", &cfg);
	broker_settings *b = &cfg.broker;
	ck_assert_uint_eq(b->max_pending_auth, 16);
	ck_assert_uint_eq(b->max_pending_auth_per_address, 1);
	ck_assert_uint_eq(b->max_pending_auth_failing, 2);
	ck_assert_uint_eq(b->login_failures, 5);
	ck_assert_uint_eq(b->login_lockout, 1);
	ck_assert_uint_eq(b->login_lockout_max, 300);
	ck_assert_uint_eq(b->login_throttle_entries, 16384);
	ck_assert_str_eq(config_broker_text(&cfg, "login_lockout_max"), "300");
	config_free(&cfg);

	load_ok("[broker]\nplugins = ws\nlogin_lockout = 0\nmax_pending_auth = 0\n", &cfg);
	ck_assert_uint_eq(cfg.broker.login_lockout, 0);
	ck_assert_uint_eq(cfg.broker.max_pending_auth, 0);
	config_free(&cfg);

	load_rejected("[broker]\nplugins = ws\nlogin_failures = 0\n", "fail.ini",
		      "fail.ini:3:", "[broker]", "login_failures", NULL);
	load_rejected("[broker]\nplugins = ws\nlogin_lockout_max = 0\n", "max.ini",
		      "max.ini:3:", "[broker]", "login_lockout_max", NULL);
}
END_TEST

START_TEST(test_max_connections_defaults_to_the_descriptor_limit_less_headroom)
{
	config cfg;
	load_ok("[broker]\nplugins = ws\n", &cfg);
	ck_assert_uint_gt(cfg.broker.nofile, 0);
	ck_assert_uint_eq(cfg.broker.max_connections,
			  config_default_max_connections(cfg.broker.nofile));
	char want[24];
	snprintf(want, sizeof(want), "%zu", cfg.broker.max_connections);
	ck_assert_str_eq(config_broker_text(&cfg, "max_connections"), want);
	config_free(&cfg);

	/* an eighth, at least 32, and never below 1 */
	ck_assert_uint_eq(config_default_max_connections(1024), 896);
	ck_assert_uint_eq(config_default_max_connections(65536), 57344);
	ck_assert_uint_eq(config_default_max_connections(64), 32);
	ck_assert_uint_eq(config_default_max_connections(20), 1);

	load_ok("[broker]\nplugins = ws\nmax_connections = 0\n", &cfg);
	ck_assert_uint_eq(cfg.broker.max_connections, 0);
	config_free(&cfg);
	load_ok("[broker]\nplugins = ws\nmax_connections = 5000\n", &cfg);
	ck_assert_str_eq(config_broker_text(&cfg, "max_connections"), "5000");
	config_free(&cfg);
}
END_TEST

/* ---- every error: CONFAB_EINVAL and one line naming file, line, key ------ */

START_TEST(test_unknown_broker_key_is_rejected_naming_file_line_section_key)
{
	load_rejected("[broker]\nplugins = ws\ncolour = blue\n", "unknown.ini",
		      "unknown.ini:3:", "[broker]", "colour", "unknown key", NULL);
}
END_TEST

START_TEST(test_file_without_broker_section_is_rejected_naming_the_file)
{
	load_rejected("[ws]\nlisten = 127.0.0.1:8080\n", "nobroker.ini",
		      "nobroker.ini:", "[broker]", NULL);
}
END_TEST

START_TEST(test_empty_file_is_rejected_for_want_of_a_broker_section)
{
	load_rejected("", "empty.ini", "empty.ini:", "[broker]", NULL);
}
END_TEST

START_TEST(test_missing_plugin_chain_is_rejected_naming_broker_plugins)
{
	load_rejected("\n[broker]\nnode_id = a\n", "noplugins.ini",
		      "noplugins.ini:2:", "[broker]", "plugins", NULL);
}
END_TEST

START_TEST(test_empty_broker_section_is_rejected_for_its_missing_plugin_chain)
{
	load_rejected("[broker]\n\n[ws]\nlisten = 127.0.0.1:8080\n", "emptybroker.ini",
		      "emptybroker.ini:1:", "[broker]", "plugins", NULL);
}
END_TEST

START_TEST(test_empty_plugin_chain_is_rejected_naming_its_line)
{
	load_rejected("[broker]\nnode_id = a\nplugins =\n", "emptyplugins.ini",
		      "emptyplugins.ini:3:", "[broker]", "plugins", NULL);
}
END_TEST

START_TEST(test_bad_node_id_is_rejected_naming_file_line_section_key)
{
	load_rejected("[broker]\nplugins = ws\nnode_id = node/1\n", "node.ini",
		      "node.ini:3:", "[broker]", "node_id", "node/1", NULL);
	load_rejected("[broker]\nplugins = ws\nnode_id = a b\n", "node.ini",
		      "node.ini:3:", "[broker]", "node_id", NULL);
	load_rejected("[broker]\nnode_id =\nplugins = ws\n", "node.ini",
		      "node.ini:2:", "[broker]", "node_id", NULL);
	char text[160];
	snprintf(text, sizeof(text), "[broker]\nplugins = ws\nnode_id = %065d\n", 0);
	load_rejected(text, "node.ini", "node.ini:3:", "[broker]", "node_id", NULL);
}
END_TEST

START_TEST(test_bad_allow_anonymous_is_rejected_naming_file_line_section_key)
{
	load_rejected("[broker]\nplugins = ws\nallow_anonymous = maybe\n", "anon.ini",
		      "anon.ini:3:", "[broker]", "allow_anonymous", "maybe", NULL);
}
END_TEST

START_TEST(test_bad_log_level_is_rejected_naming_file_line_section_key)
{
	load_rejected("[broker]\nlog_level = verbose\nplugins = ws\n", "level.ini",
		      "level.ini:2:", "[broker]", "log_level", "verbose", NULL);
}
END_TEST

START_TEST(test_max_message_bytes_not_a_number_is_rejected)
{
	load_rejected("[broker]\nplugins = ws\nmax_message_bytes = 64k\n", "max.ini",
		      "max.ini:3:", "[broker]", "max_message_bytes", NULL);
	load_rejected("[broker]\nplugins = ws\nmax_message_bytes = lots\n", "max.ini",
		      "max.ini:3:", "[broker]", "max_message_bytes", NULL);
	load_rejected("[broker]\nplugins = ws\nmax_message_bytes = +100\n", "max.ini",
		      "max.ini:3:", "[broker]", "max_message_bytes", NULL);
}
END_TEST

START_TEST(test_max_message_bytes_too_small_is_rejected)
{
	load_rejected("[broker]\nplugins = ws\nmax_message_bytes = 63\n", "max.ini",
		      "max.ini:3:", "[broker]", "max_message_bytes", NULL);
	load_rejected("[broker]\nplugins = ws\nmax_message_bytes = -1\n", "max.ini",
		      "max.ini:3:", "[broker]", "max_message_bytes", NULL);
}
END_TEST

START_TEST(test_max_message_bytes_too_big_is_rejected)
{
	load_rejected("[broker]\nplugins = ws\nmax_message_bytes = 16777217\n", "max.ini",
		      "max.ini:3:", "[broker]", "max_message_bytes", NULL);
	load_rejected("[broker]\nplugins = ws\nmax_message_bytes = 99999999999999999999999\n",
		      "max.ini", "max.ini:3:", "[broker]", "max_message_bytes", NULL);
}
END_TEST

START_TEST(test_negative_history_size_is_rejected)
{
	load_rejected("[broker]\nplugins = ws\nhistory_size = -1\n", "hist.ini",
		      "hist.ini:3:", "[broker]", "history_size", NULL);
}
END_TEST

START_TEST(test_history_size_not_a_number_is_rejected)
{
	load_rejected("[broker]\nplugins = ws\nhistory_size = ten\n", "hist.ini",
		      "hist.ini:3:", "[broker]", "history_size", NULL);
	load_rejected("[broker]\nplugins = ws\nhistory_size = 1.5\n", "hist.ini",
		      "hist.ini:3:", "[broker]", "history_size", NULL);
	load_rejected("[broker]\nplugins = ws\nhistory_size = 100001\n", "hist.ini",
		      "hist.ini:3:", "[broker]", "history_size", NULL);
}
END_TEST

START_TEST(test_key_given_twice_is_rejected_naming_the_second_line)
{
	load_rejected("[broker]\nnode_id = a\nplugins = ws\nnode_id = b\n", "twice.ini",
		      "twice.ini:4:", "[broker]", "node_id", "twice", NULL);
	load_rejected("[broker]\nplugins = ws\n[ws]\nlisten = 1\nother = 2\nlisten = 3\n",
		      "twice.ini", "twice.ini:6:", "[ws]", "listen", "twice", NULL);
}
END_TEST

/* A repeated key on the very next line is not indented: it is not a
 * continuation, it is the same key given twice. */
START_TEST(test_key_given_twice_on_consecutive_lines_is_rejected)
{
	load_rejected("[broker]\nplugins = ws\nplugins = fx_good_auth\n", "twice.ini",
		      "twice.ini:3:", "[broker]", "plugins", "twice", NULL);
}
END_TEST

START_TEST(test_key_before_any_section_is_rejected_naming_file_line_key)
{
	load_rejected("; header\nnode_id = a\n[broker]\nplugins = ws\n", "nosection.ini",
		      "nosection.ini:2:", "node_id", NULL);
}
END_TEST

START_TEST(test_syntax_error_line_is_rejected_naming_file_and_line)
{
	load_rejected("[broker]\nplugins = ws\nthis line has no equals sign\n", "syntax.ini",
		      "syntax.ini:3:", "syntax error", NULL);
	load_rejected("[broker\nplugins = ws\n", "syntax.ini", "syntax.ini:1:", NULL);
}
END_TEST

START_TEST(test_first_error_wins_and_only_one_line_is_logged)
{
	load_rejected("[broker]\nplugins = ws\ncolour = blue\nlog_level = loud\nnode_id = a/b\n",
		      "many.ini", "many.ini:3:", "colour", NULL);
}
END_TEST

START_TEST(test_missing_file_is_rejected_naming_it)
{
	load_rejected(NULL, "/nonexistent/confab/broker.ini", "/nonexistent/confab/broker.ini",
		      NULL);
}
END_TEST

/* ---- lookups ------------------------------------------------------------ */

START_TEST(test_section_find_and_get_mark_keys_used)
{
	config cfg;
	load_ok(sample_ini, &cfg);

	ck_assert_ptr_null(config_section_find(&cfg, "nope"));
	config_section *ws = config_section_find(&cfg, "ws");
	ck_assert_ptr_nonnull(ws);
	ck_assert_str_eq(ws->name, "ws");
	ck_assert_uint_eq(ws->n_entries, 1);
	ck_assert(!ws->entries[0].used);

	ck_assert_ptr_null(config_section_get(ws, "nope"));
	ck_assert(!ws->entries[0].used);
	config_entry *e = config_section_get(ws, "listen");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->key, "listen");
	ck_assert_str_eq(e->value, "127.0.0.1:8080");
	ck_assert(e->used);
	ck_assert_ptr_null(config_section_get(NULL, "listen"));

	/* the core read every key of [broker] */
	config_section *b = config_section_find(&cfg, "broker");
	for (size_t i = 0; i < b->n_entries; i++)
		ck_assert_msg(b->entries[i].used, "[broker] %s not marked used",
			      b->entries[i].key);
	config_free(&cfg);
}
END_TEST

START_TEST(test_broker_text_gives_every_key_with_defaults_applied)
{
	config cfg;
	load_ok("[broker]\nplugins = ws, allowlist\n", &cfg);
	ck_assert_str_eq(config_broker_text(&cfg, "node_id"), cfg.broker.node_id);
	ck_assert_str_eq(config_broker_text(&cfg, "plugin_dir"), cfg.broker.plugin_dir);
	ck_assert_str_eq(config_broker_text(&cfg, "plugins"), "ws, allowlist");
	ck_assert_str_eq(config_broker_text(&cfg, "allow_anonymous"), "true");
	ck_assert_str_eq(config_broker_text(&cfg, "log_level"), "info");
	ck_assert_str_eq(config_broker_text(&cfg, "max_message_bytes"), "65536");
	ck_assert_str_eq(config_broker_text(&cfg, "history_size"), "100");
	ck_assert_ptr_null(config_broker_text(&cfg, "colour"));
	config_free(&cfg);

	load_ok("[broker]\nnode_id = n1\nplugin_dir = /p\nplugins = ws\nallow_anonymous = no\n"
		"log_level = error\nmax_message_bytes = 4096\nhistory_size = 7\n", &cfg);
	ck_assert_str_eq(config_broker_text(&cfg, "node_id"), "n1");
	ck_assert_str_eq(config_broker_text(&cfg, "plugin_dir"), "/p");
	ck_assert_str_eq(config_broker_text(&cfg, "plugins"), "ws");
	ck_assert_str_eq(config_broker_text(&cfg, "allow_anonymous"), "false");
	ck_assert_str_eq(config_broker_text(&cfg, "log_level"), "error");
	ck_assert_str_eq(config_broker_text(&cfg, "max_message_bytes"), "4096");
	ck_assert_str_eq(config_broker_text(&cfg, "history_size"), "7");
	config_free(&cfg);
}
END_TEST

START_TEST(test_split_list_separates_on_commas_spaces_and_tabs)
{
	char **list;
	size_t n;
	ck_assert_int_eq(config_split_list("ws, auth /x/y.so", &list, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(list[0], "ws");
	ck_assert_str_eq(list[1], "auth");
	ck_assert_str_eq(list[2], "/x/y.so");
	config_free_list(list, n);

	ck_assert_int_eq(config_split_list("  ,, a\tb ,  ", &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(list[0], "a");
	ck_assert_str_eq(list[1], "b");
	config_free_list(list, n);

	ck_assert_int_eq(config_split_list("", &list, &n), 0);
	ck_assert_uint_eq(n, 0);
	config_free_list(list, n);

	ck_assert_int_eq(config_split_list(" , ", &list, &n), 0);
	ck_assert_uint_eq(n, 0);
	config_free_list(list, n);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");

	TCase *tc = tcase_create("parsing");
	tcase_add_test(tc, test_only_a_plugin_chain_gives_every_default);
	tcase_add_test(tc, test_default_node_id_is_host_dash_pid_and_a_valid_node_id);
	tcase_add_test(tc, test_issue_sample_broker_ini_with_inline_comments_parses);
	tcase_add_test(tc, test_issue_sample_loads_from_a_real_file);
	tcase_add_test(tc, test_every_broker_key_is_parsed);
	tcase_add_test(tc, test_allow_anonymous_accepts_the_usual_boolean_words);
	tcase_add_test(tc, test_every_log_level_is_accepted);
	tcase_add_test(tc, test_number_limits_are_inclusive);
	tcase_add_test(tc, test_plugin_chain_splits_on_commas_and_spaces_keeping_paths);
	tcase_add_test(tc, test_value_continues_on_an_indented_next_line);
	tcase_add_test(tc, test_plugin_sections_are_kept_as_written);
	tcase_add_test(tc, test_section_line_is_the_line_of_its_header);
	tcase_add_test(tc, test_long_line_is_read_whole_or_rejected_naming_its_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_unknown_broker_key_is_rejected_naming_file_line_section_key);
	tcase_add_test(tc, test_limits_have_defaults_and_are_read_and_checked);
	tcase_add_test(tc, test_auth_bounds_have_defaults_and_are_read_and_checked);
	tcase_add_test(tc, test_room_ttl_and_max_rooms_have_defaults_and_are_read);
	tcase_add_test(tc, test_idem_window_defaults_to_two_minutes_and_is_checked);
	tcase_add_test(tc, test_file_without_broker_section_is_rejected_naming_the_file);
	tcase_add_test(tc, test_empty_file_is_rejected_for_want_of_a_broker_section);
	tcase_add_test(tc, test_missing_plugin_chain_is_rejected_naming_broker_plugins);
	tcase_add_test(tc, test_empty_broker_section_is_rejected_for_its_missing_plugin_chain);
	tcase_add_test(tc, test_empty_plugin_chain_is_rejected_naming_its_line);
	tcase_add_test(tc, test_bad_node_id_is_rejected_naming_file_line_section_key);
	tcase_add_test(tc, test_bad_allow_anonymous_is_rejected_naming_file_line_section_key);
	tcase_add_test(tc, test_bad_log_level_is_rejected_naming_file_line_section_key);
	tcase_add_test(tc, test_max_message_bytes_not_a_number_is_rejected);
	tcase_add_test(tc, test_max_message_bytes_too_small_is_rejected);
	tcase_add_test(tc, test_max_message_bytes_too_big_is_rejected);
	tcase_add_test(tc, test_negative_history_size_is_rejected);
	tcase_add_test(tc, test_history_size_not_a_number_is_rejected);
	tcase_add_test(tc, test_key_given_twice_is_rejected_naming_the_second_line);
	tcase_add_test(tc, test_key_given_twice_on_consecutive_lines_is_rejected);
	tcase_add_test(tc, test_key_before_any_section_is_rejected_naming_file_line_key);
	tcase_add_test(tc, test_syntax_error_line_is_rejected_naming_file_and_line);
	tcase_add_test(tc, test_first_error_wins_and_only_one_line_is_logged);
	tcase_add_test(tc, test_missing_file_is_rejected_naming_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("lookups");
	tcase_add_test(tc, test_section_find_and_get_mark_keys_used);
	tcase_add_test(tc, test_broker_text_gives_every_key_with_defaults_applied);
	tcase_add_test(tc, test_max_connections_defaults_to_the_descriptor_limit_less_headroom);
	tcase_add_test(tc, test_split_list_separates_on_commas_spaces_and_tabs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_VERBOSE);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
