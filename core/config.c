/* Reading broker.ini into sections and checking [broker]: see config.h.
 *
 * broker.ini is parsed by inih. inih tells us the line only on a syntax
 * error, so we feed it through our own reader that counts lines: when the
 * handler runs, the last line read is the one it is looking at. */
#include "config.h"

#include <confab/util.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <ini.h>

#include "confab-paths.h"  /* CONFAB_PLUGIN_DIR: made by make (Makefile.am) */
#include "log.h"

#define DEFAULT_MAX_MESSAGE_BYTES 65536
#define DEFAULT_HISTORY_SIZE 100
#define MAX_HISTORY_SIZE 100000
#define MAX_MESSAGE_BYTES_LIMIT (16u * 1024 * 1024)

static const char *const broker_keys[] = {
	"node_id", "plugin_dir", "plugins", "allow_anonymous", "log_level", "log_format",
	"max_message_bytes", "history_size", "allowed_origins", "control_socket", NULL
};

/* The numeric limits of [broker]: name, default, range, and where the
 * value goes. Their text forms (for host->broker_get) sit in limit_text in
 * the same order. */
typedef struct limit_key {
	const char *name;
	size_t def, min, max;
	size_t offset;
} limit_key;

static const limit_key limit_keys[] = {
	{ "rate_limit", 50, 0, 1000000, offsetof(broker_settings, rate_limit) },
	{ "rate_burst", 100, 1, 1000000, offsetof(broker_settings, rate_burst) },
	{ "flood_close", 200, 0, 1000000, offsetof(broker_settings, flood_close) },
	{ "max_rooms_per_session", 100, 0, 1000000, offsetof(broker_settings, max_rooms_per_session) },
	{ "max_sessions_per_user", 20, 0, 1000000, offsetof(broker_settings, max_sessions_per_user) },
	{ "max_connections_per_address", 100, 0, 10000000,
	  offsetof(broker_settings, max_connections_per_address) },
	{ "idle_timeout", 60, 0, 86400, offsetof(broker_settings, idle_timeout) },
	{ "max_json_depth", 32, 1, 1000, offsetof(broker_settings, max_json_depth) },
	/* authentication under attack (docs/security.md#authentication) */
	{ "max_pending_auth", 16, 0, 1000000, offsetof(broker_settings, max_pending_auth) },
	{ "max_pending_auth_per_address", 1, 0, 1000000,
	  offsetof(broker_settings, max_pending_auth_per_address) },
	{ "max_pending_auth_failing", 2, 0, 1000000,
	  offsetof(broker_settings, max_pending_auth_failing) },
	{ "login_failures", 5, 1, 1000000, offsetof(broker_settings, login_failures) },
	{ "login_lockout", 1, 0, 86400, offsetof(broker_settings, login_lockout) },
	{ "login_lockout_max", 300, 1, 86400, offsetof(broker_settings, login_lockout_max) },
	{ "login_throttle_entries", 16384, 1, 10000000,
	  offsetof(broker_settings, login_throttle_entries) },
	/* its default (0 here) is derived from RLIMIT_NOFILE: check_broker */
	{ "max_connections", 0, 0, 100000000, offsetof(broker_settings, max_connections) },
	{ "room_ttl", 86400, 0, 315360000, offsetof(broker_settings, room_ttl) },
	{ "max_rooms", 100000, 0, 100000000, offsetof(broker_settings, max_rooms) },
	{ "idem_window", 120, 1, 86400, offsetof(broker_settings, idem_window) },
	/* graceful drain on SIGTERM (broker_drain); 0 = no wait */
	{ "drain_grace", 5, 0, 3600, offsetof(broker_settings, drain_grace) },
	{ "drain_window", 10, 0, 86400, offsetof(broker_settings, drain_window) },
};
#define N_LIMIT_KEYS (sizeof(limit_keys) / sizeof(limit_keys[0]))
_Static_assert(N_LIMIT_KEYS <= sizeof(((broker_settings *)0)->limit_text) /
				 sizeof(((broker_settings *)0)->limit_text[0]),
	       "limit_text has a slot for every limit");

static bool is_broker_key(const char *key)
{
	for (int k = 0; broker_keys[k]; k++)
		if (strcmp(key, broker_keys[k]) == 0)
			return true;
	for (size_t k = 0; k < N_LIMIT_KEYS; k++)
		if (strcmp(key, limit_keys[k].name) == 0)
			return true;
	return false;
}

/* Parser state shared by the reader and the handler. */
typedef struct parse_state {
	config *cfg;
	int line;
	/* where the first error was found; reported after parsing */
	int error_line;
	char error[256];
	char error_section[128];
	char error_key[128];
	/* the entry the previous line set: an indented next line continues it */
	config_entry *last;
	int last_line;
	bool indented;           /* the current line starts with white space */
	/* reader input */
	FILE *file;
	const char *text;
} parse_state;

static void set_error(parse_state *ps, const char *section, const char *key,
		      const char *msg);
static config_section *add_section(config *cfg, const char *name, int line);

/* Reads the rest of a line that did not fit, so that counting stays right. */
static void skip_rest_of_line(parse_state *ps)
{
	if (ps->file) {
		int c;
		while ((c = fgetc(ps->file)) != EOF && c != '\n')
			;
	} else {
		while (*ps->text && *ps->text != '\n')
			ps->text++;
		if (*ps->text)
			ps->text++;
	}
}

/* Notes what inih's handler cannot tell us about the line just read: where
 * a [section] header is, and whether the line is indented (a continuation). */
static void look_at_line(parse_state *ps, const char *line)
{
	ps->indented = *line == ' ' || *line == '\t';
	while (*line == ' ' || *line == '\t')
		line++;
	if (*line != '[')
		return;
	const char *end = strchr(line, ']');
	if (!end || end == line + 1)
		return;              /* inih reports the syntax error */
	char name[128];
	size_t n = (size_t)(end - line - 1);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, line + 1, n);
	name[n] = '\0';
	/* trim as inih does */
	while (n && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		name[--n] = '\0';
	char *start = name;
	while (*start == ' ' || *start == '\t')
		start++;
	if (*start && !config_section_find(ps->cfg, start) && !add_section(ps->cfg, start, ps->line))
		set_error(ps, start, "", "out of memory");
}

static char *reader(char *str, int num, void *stream)
{
	parse_state *ps = stream;
	char *got;
	if (ps->file) {
		got = fgets(str, num, ps->file);
	} else {
		if (!*ps->text)
			return NULL;
		size_t n = 0;
		/* at most num - 1 bytes and the NUL, like fgets */
		while (ps->text[n] && ps->text[n] != '\n' && n + 1 < (size_t)num)
			n++;
		if (ps->text[n] == '\n' && n + 1 < (size_t)num)
			n++;
		memcpy(str, ps->text, n);
		str[n] = '\0';
		ps->text += n;
		got = str;
	}
	if (!got)
		return NULL;
	ps->line++;
	size_t len = strlen(str);
	bool at_end = ps->file ? feof(ps->file) : !*ps->text;
	if (len > 0 && str[len - 1] != '\n' && !at_end && len + 1 >= (size_t)num) {
		char msg[96];
		snprintf(msg, sizeof(msg), "line longer than %d bytes", num - 2);
		set_error(ps, "", "", msg);
		skip_rest_of_line(ps);
		str[0] = '\0';      /* inih sees an empty line */
		return str;
	}
	look_at_line(ps, str);
	return str;
}

static void set_error(parse_state *ps, const char *section, const char *key,
		      const char *msg)
{
	if (ps->error_line)
		return;
	ps->error_line = ps->line;
	snprintf(ps->error, sizeof(ps->error), "%s", msg);
	snprintf(ps->error_section, sizeof(ps->error_section), "%s", section);
	snprintf(ps->error_key, sizeof(ps->error_key), "%s", key);
}

static config_section *add_section(config *cfg, const char *name, int line)
{
	config_section *s = realloc(cfg->sections, (cfg->n_sections + 1) * sizeof(*s));
	if (!s)
		return NULL;
	cfg->sections = s;
	s = &cfg->sections[cfg->n_sections];
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	if (!s->name)
		return NULL;
	s->line = line;
	cfg->n_sections++;
	return s;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	parse_state *ps = user;
	config *cfg = ps->cfg;

	if (!*section) {
		set_error(ps, "", name, "key outside of any section (start the file with [broker])");
		return 1;
	}
	config_section *s = config_section_find(cfg, section);
	/* inih hands over an indented line as the same key again: a value
	 * continued on the next line. */
	if (ps->indented && ps->last && ps->last_line == ps->line - 1 && s &&
	    strcmp(ps->last->key, name) == 0 &&
	    ps->last >= s->entries && ps->last < s->entries + s->n_entries) {
		/* inih strips an inline " ;" comment from key lines only */
		size_t b = strlen(value);
		for (size_t i = 1; i < b; i++) {
			if (value[i] == ';' && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
				b = i;
				break;
			}
		}
		while (b > 0 && (value[b - 1] == ' ' || value[b - 1] == '\t'))
			b--;
		size_t a = strlen(ps->last->value);
		char *joined = realloc(ps->last->value, a + b + 2);
		if (!joined) {
			set_error(ps, section, name, "out of memory");
			return 1;
		}
		joined[a] = ' ';
		memcpy(joined + a + 1, value, b);
		joined[a + 1 + b] = '\0';
		ps->last->value = joined;
		ps->last_line = ps->line;
		return 1;
	}
	if (!s && !(s = add_section(cfg, section, ps->line))) {
		set_error(ps, section, name, "out of memory");
		return 1;
	}
	for (size_t i = 0; i < s->n_entries; i++) {
		if (strcmp(s->entries[i].key, name) == 0) {
			char msg[128];
			snprintf(msg, sizeof(msg), "given twice (first on line %d)",
				 s->entries[i].line);
			set_error(ps, section, name, msg);
			return 1;
		}
	}
	config_entry *e = realloc(s->entries, (s->n_entries + 1) * sizeof(*e));
	if (!e) {
		set_error(ps, section, name, "out of memory");
		return 1;
	}
	s->entries = e;
	e = &s->entries[s->n_entries];
	e->key = strdup(name);
	e->value = strdup(value);
	e->line = ps->line;
	e->used = false;
	if (!e->key || !e->value) {
		free(e->key);
		free(e->value);
		set_error(ps, section, name, "out of memory");
		return 1;
	}
	s->n_entries++;
	ps->last = e;
	ps->last_line = ps->line;
	return 1;
}

config_section *config_section_find(const config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_sections; i++)
		if (strcmp(cfg->sections[i].name, name) == 0)
			return &cfg->sections[i];
	return NULL;
}

config_entry *config_section_get(config_section *section, const char *key)
{
	if (!section)
		return NULL;
	for (size_t i = 0; i < section->n_entries; i++) {
		if (strcmp(section->entries[i].key, key) == 0) {
			section->entries[i].used = true;
			return &section->entries[i];
		}
	}
	return NULL;
}

void config_vreport(const config *cfg, const char *section, const char *key,
		    const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);

	int line = 0;
	config_section *s = (section && *section) ? config_section_find(cfg, section) : NULL;
	if (s) {
		line = s->line;
		for (size_t i = 0; key && i < s->n_entries; i++)
			if (strcmp(s->entries[i].key, key) == 0)
				line = s->entries[i].line;
	}
	char where[160] = "";
	if (section && *section && key && *key)
		snprintf(where, sizeof(where), " [%s] %s:", section, key);
	else if (section && *section)
		snprintf(where, sizeof(where), " [%s]:", section);
	if (line)
		log_line(CONFAB_LOG_ERROR, "config", "%s:%d:%s %s", cfg->path, line, where, msg);
	else
		log_line(CONFAB_LOG_ERROR, "config", "%s:%s %s", cfg->path, where, msg);
}

void config_report(const config *cfg, const char *section, const char *key,
		   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	config_vreport(cfg, section, key, fmt, ap);
	va_end(ap);
}

int config_split_list(const char *value, char ***out, size_t *n_out)
{
	char **list = NULL;
	size_t n = 0;
	const char *p = value;
	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *start = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		char **grown = realloc(list, (n + 1) * sizeof(*list));
		if (!grown)
			goto oom;
		list = grown;
		list[n] = strndup(start, (size_t)(p - start));
		if (!list[n])
			goto oom;
		n++;
	}
	*out = list;
	*n_out = n;
	return 0;
oom:
	config_free_list(list, n);
	return CONFAB_ENOMEM;
}

void config_free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static bool parse_size(const char *text, size_t min, size_t max, size_t *out)
{
	uint64_t v;
	if (!confab_parse_uint(text, min, max, &v))
		return false;
	*out = (size_t)v;
	return true;
}

bool config_parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1", NULL };
	static const char *const no[] = { "false", "no", "off", "0", NULL };
	for (int i = 0; yes[i]; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool valid_node_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

/* Checks [broker] and fills cfg->broker with defaults applied. */
static int check_broker(config *cfg)
{
	broker_settings *b = &cfg->broker;
	config_section *s = config_section_find(cfg, "broker");
	if (!s) {
		config_report(cfg, NULL, NULL, "no [broker] section");
		return CONFAB_EINVAL;
	}
	for (size_t i = 0; i < s->n_entries; i++) {
		if (!is_broker_key(s->entries[i].key)) {
			config_report(cfg, "broker", s->entries[i].key,
				      "unknown key (the [broker] keys are listed in docs/configuration.md)");
			return CONFAB_EINVAL;
		}
	}

	config_entry *e;
	if ((e = config_section_get(s, "node_id"))) {
		if (!valid_node_id(e->value)) {
			config_report(cfg, "broker", "node_id",
				      "'%s' is not 1-64 characters of A-Z a-z 0-9 - _ .", e->value);
			return CONFAB_EINVAL;
		}
		b->node_id = strdup(e->value);
	} else {
		char host[256] = "confab";
		if (gethostname(host, sizeof(host)) != 0)
			strcpy(host, "confab");
		host[sizeof(host) - 1] = '\0';
		/* keep only the characters a node id may hold */
		char clean[48];
		size_t n = 0;
		for (const char *p = host; *p && n + 1 < sizeof(clean); p++)
			if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
				clean[n++] = *p;
		clean[n] = '\0';
		char id[72];
		snprintf(id, sizeof(id), "%s-%ld", n ? clean : "confab", (long)getpid());
		b->node_id = strdup(id);
	}

	e = config_section_get(s, "plugin_dir");
	b->plugin_dir = strdup(e ? e->value : CONFAB_PLUGIN_DIR);
	if (e && !*e->value) {
		config_report(cfg, "broker", "plugin_dir", "must not be empty");
		return CONFAB_EINVAL;
	}

	e = config_section_get(s, "plugins");
	if (!e || !*e->value) {
		config_report(cfg, "broker", "plugins",
			      "no plugin chain: at least one transport is needed (e.g. plugins = ws)");
		return CONFAB_EINVAL;
	}
	if (config_split_list(e->value, &b->plugins, &b->n_plugins) != 0)
		return CONFAB_ENOMEM;

	b->allow_anonymous = true;
	if ((e = config_section_get(s, "allow_anonymous")) &&
	    !config_parse_bool(e->value, &b->allow_anonymous)) {
		config_report(cfg, "broker", "allow_anonymous",
			      "'%s' is not a boolean (true or false)", e->value);
		return CONFAB_EINVAL;
	}

	b->log_level = CONFAB_LOG_INFO;
	if ((e = config_section_get(s, "log_level")) && !log_parse_level(e->value, &b->log_level)) {
		config_report(cfg, "broker", "log_level",
			      "'%s' is not one of error, warn, info, debug", e->value);
		return CONFAB_EINVAL;
	}

	b->log_format = LOG_FORMAT_TEXT;
	if ((e = config_section_get(s, "log_format")) &&
	    !log_parse_format(e->value, &b->log_format)) {
		config_report(cfg, "broker", "log_format", "'%s' is not one of text, json", e->value);
		return CONFAB_EINVAL;
	}

	b->max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES;
	if ((e = config_section_get(s, "max_message_bytes")) &&
	    !parse_size(e->value, 64, MAX_MESSAGE_BYTES_LIMIT, &b->max_message_bytes)) {
		config_report(cfg, "broker", "max_message_bytes",
			      "'%s' is not a number of bytes from 64 to %u", e->value,
			      MAX_MESSAGE_BYTES_LIMIT);
		return CONFAB_EINVAL;
	}

	b->history_size = DEFAULT_HISTORY_SIZE;
	if ((e = config_section_get(s, "history_size")) &&
	    !parse_size(e->value, 0, MAX_HISTORY_SIZE, &b->history_size)) {
		config_report(cfg, "broker", "history_size",
			      "'%s' is not a number of messages from 0 to %d", e->value,
			      MAX_HISTORY_SIZE);
		return CONFAB_EINVAL;
	}

	struct rlimit rl;
	b->nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
			    rl.rlim_cur < (rlim_t)SIZE_MAX
		? (size_t)rl.rlim_cur : 1024;
	for (size_t k = 0; k < N_LIMIT_KEYS; k++) {
		const limit_key *lk = &limit_keys[k];
		size_t *field = (size_t *)((char *)b + lk->offset);
		*field = lk->def;
		if (field == &b->max_connections)
			*field = config_default_max_connections(b->nofile);
		if ((e = config_section_get(s, lk->name)) &&
		    !parse_size(e->value, lk->min, lk->max, field)) {
			config_report(cfg, "broker", lk->name, "'%s' is not a number from %zu to %zu",
				      e->value, lk->min, lk->max);
			return CONFAB_EINVAL;
		}
		snprintf(b->limit_text[k], sizeof(b->limit_text[k]), "%zu", *field);
	}

	if ((e = config_section_get(s, "allowed_origins")) &&
	    config_split_list(e->value, &b->allowed_origins, &b->n_allowed_origins) != 0)
		return CONFAB_ENOMEM;

	/* the control socket (control.c checks the path): absent or empty = off */
	if ((e = config_section_get(s, "control_socket")) && *e->value &&
	    !(b->control_socket = strdup(e->value)))
		return CONFAB_ENOMEM;

	snprintf(b->max_message_bytes_text, sizeof(b->max_message_bytes_text), "%zu",
		 b->max_message_bytes);
	snprintf(b->history_size_text, sizeof(b->history_size_text), "%zu", b->history_size);
	if (!b->node_id || !b->plugin_dir)
		return CONFAB_ENOMEM;
	return 0;
}

/* Headroom: what the node opens besides client connections (the
 * listener, the loop's own descriptors, backplane connections, files
 * plugins read, the transport's reserve descriptor) is a few dozen; an
 * eighth of the limit, at least 32, keeps room for them and for answering
 * 503 to connections over the cap, which needs a descriptor for a moment
 * each. A limit too small for that still leaves one connection. */
size_t config_default_max_connections(size_t nofile)
{
	size_t headroom = nofile / 8 < 32 ? 32 : nofile / 8;
	return nofile > headroom + 1 ? nofile - headroom : 1;
}

static int load(parse_state *ps, const char *name, config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = strdup(name);
	if (!cfg->path)
		return CONFAB_ENOMEM;
	ps->cfg = cfg;
	int rc = ini_parse_stream(reader, ps, handler, ps);
	if (rc > 0 && (!ps->error_line || rc < ps->error_line)) {
		/* inih's own syntax error comes first */
		log_line(CONFAB_LOG_ERROR, "config",
			 "%s:%d: syntax error: expected [section] or key = value", cfg->path, rc);
		config_free(cfg);
		return CONFAB_EINVAL;
	}
	if (ps->error_line) {
		char where[300] = "";
		if (*ps->error_section)
			snprintf(where, sizeof(where), " [%s] %s:", ps->error_section, ps->error_key);
		else if (*ps->error_key)
			snprintf(where, sizeof(where), " %s:", ps->error_key);
		log_line(CONFAB_LOG_ERROR, "config", "%s:%d:%s %s", cfg->path,
			 ps->error_line, where, ps->error);
		config_free(cfg);
		return CONFAB_EINVAL;
	}
	if (rc < 0) {
		config_report(cfg, NULL, NULL, "out of memory while reading");
		config_free(cfg);
		return CONFAB_ENOMEM;
	}
	rc = check_broker(cfg);
	if (rc != 0) {
		if (rc == CONFAB_ENOMEM)
			config_report(cfg, "broker", NULL, "out of memory");
		config_free(cfg);
		return rc;
	}
	return 0;
}

int config_load(const char *path, config *cfg)
{
	parse_state ps = { 0 };
	ps.file = fopen(path, "r");
	if (!ps.file) {
		memset(cfg, 0, sizeof(*cfg));
		log_line(CONFAB_LOG_ERROR, "config", "%s: cannot open: %s", path, strerror(errno));
		return CONFAB_EINVAL;
	}
	int rc = load(&ps, path, cfg);
	fclose(ps.file);
	return rc;
}

int config_load_string(const char *text, const char *name, config *cfg)
{
	parse_state ps = { 0 };
	ps.text = text;
	return load(&ps, name, cfg);
}

void config_free(config *cfg)
{
	for (size_t i = 0; i < cfg->n_sections; i++) {
		config_section *s = &cfg->sections[i];
		for (size_t j = 0; j < s->n_entries; j++) {
			free(s->entries[j].key);
			free(s->entries[j].value);
		}
		free(s->entries);
		free(s->name);
	}
	free(cfg->sections);
	free(cfg->path);
	free(cfg->broker.node_id);
	free(cfg->broker.plugin_dir);
	free(cfg->broker.control_socket);
	config_free_list(cfg->broker.plugins, cfg->broker.n_plugins);
	config_free_list(cfg->broker.allowed_origins, cfg->broker.n_allowed_origins);
	memset(cfg, 0, sizeof(*cfg));
}

int config_broker_uint(const config *cfg, const char *key, uint64_t *out)
{
	const broker_settings *b = &cfg->broker;
	if (strcmp(key, "max_message_bytes") == 0) {
		*out = b->max_message_bytes;
		return 0;
	}
	if (strcmp(key, "history_size") == 0) {
		*out = b->history_size;
		return 0;
	}
	for (size_t k = 0; k < N_LIMIT_KEYS; k++)
		if (strcmp(key, limit_keys[k].name) == 0) {
			*out = *(const size_t *)((const char *)b + limit_keys[k].offset);
			return 0;
		}
	return CONFAB_EINVAL;
}

const char *config_broker_text(const config *cfg, const char *key)
{
	const broker_settings *b = &cfg->broker;
	if (strcmp(key, "node_id") == 0)
		return b->node_id;
	if (strcmp(key, "plugin_dir") == 0)
		return b->plugin_dir;
	if (strcmp(key, "allow_anonymous") == 0)
		return b->allow_anonymous ? "true" : "false";
	if (strcmp(key, "log_level") == 0)
		return log_level_name(b->log_level);
	if (strcmp(key, "log_format") == 0)
		return log_format_name(b->log_format);
	if (strcmp(key, "max_message_bytes") == 0)
		return b->max_message_bytes_text;
	if (strcmp(key, "history_size") == 0)
		return b->history_size_text;
	for (size_t k = 0; k < N_LIMIT_KEYS; k++)
		if (strcmp(key, limit_keys[k].name) == 0)
			return b->limit_text[k];
	if (strcmp(key, "allowed_origins") == 0) {
		config_section *s = config_section_find(cfg, "broker");
		config_entry *e = config_section_get(s, "allowed_origins");
		return e ? e->value : "";
	}
	if (strcmp(key, "plugins") == 0) {
		config_section *s = config_section_find(cfg, "broker");
		config_entry *e = config_section_get(s, "plugins");
		return e ? e->value : NULL;
	}
	return NULL;
}

/* The [broker] settings a running node keeps until it restarts: who it is
 * and what it loaded, and what its backplane sized its stored rooms by. */
static const char *const restart_only_keys[] = {
	"node_id", "plugin_dir", "plugins", "control_socket", "history_size", "room_ttl",
	"idem_window", NULL
};

static const char *restart_only_text(const config *cfg, const char *key)
{
	if (strcmp(key, "control_socket") == 0)
		return cfg->broker.control_socket ? cfg->broker.control_socket : "";
	const char *v = config_broker_text(cfg, key);
	return v ? v : "";
}

static void swap_text(char **a, char **b)
{
	char *t = *a;
	*a = *b;
	*b = t;
}

/* Puts running's value of the restart-only `key` into next (and next's
 * into running, so that each is freed with its config). */
static void take_running(config *running, config *next, const char *key)
{
	broker_settings *r = &running->broker, *n = &next->broker;
	if (strcmp(key, "node_id") == 0) {
		swap_text(&r->node_id, &n->node_id);
	} else if (strcmp(key, "plugin_dir") == 0) {
		swap_text(&r->plugin_dir, &n->plugin_dir);
	} else if (strcmp(key, "control_socket") == 0) {
		swap_text(&r->control_socket, &n->control_socket);
	} else if (strcmp(key, "plugins") == 0) {
		char **list = r->plugins;
		size_t count = r->n_plugins;
		r->plugins = n->plugins;
		r->n_plugins = n->n_plugins;
		n->plugins = list;
		n->n_plugins = count;
	} else if (strcmp(key, "history_size") == 0) {
		n->history_size = r->history_size;
		memcpy(n->history_size_text, r->history_size_text, sizeof(n->history_size_text));
	} else {
		for (size_t k = 0; k < N_LIMIT_KEYS; k++) {
			if (strcmp(key, limit_keys[k].name) != 0)
				continue;
			*(size_t *)((char *)n + limit_keys[k].offset) =
				*(const size_t *)((const char *)r + limit_keys[k].offset);
			memcpy(n->limit_text[k], r->limit_text[k], sizeof(n->limit_text[k]));
		}
	}
}

void config_keep_restart_only(config *running, config *next, config_changed_fn changed)
{
	for (int k = 0; restart_only_keys[k]; k++) {
		const char *key = restart_only_keys[k];
		const char *was = restart_only_text(running, key), *now = restart_only_text(next, key);
		if (strcmp(was, now) == 0)
			continue;
		changed(key, now, was);
		take_running(running, next, key);
	}
}
