/* broker.ini: read with inih into sections of key/value entries, with the
 * [broker] section checked and its defaults applied. Plugin sections are
 * kept as they are; each plugin reads its own through the host table. */
#ifndef CONFAB_CORE_CONFIG_H
#define CONFAB_CORE_CONFIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <confab/common.h>

#include "log.h"

typedef struct config_entry {
	char *key;
	char *value;
	int line;
	bool used;      /* read by the core or by the section's plugin */
} config_entry;

typedef struct config_section {
	char *name;
	int line;
	config_entry *entries;
	size_t n_entries;
} config_section;

/* The [broker] settings, with defaults applied. */
typedef struct broker_settings {
	char *node_id;
	char *plugin_dir;
	char **plugins;          /* the chain, in order */
	size_t n_plugins;
	bool allow_anonymous;
	confab_log_level log_level;
	log_format log_format;
	size_t max_message_bytes;
	size_t history_size;
	/* the numbers as text, for plugins (host->broker_get) */
	char max_message_bytes_text[24];
	char history_size_text[24];

	/* Limits against abusive clients (docs/auth.md); 0 turns one off
	 * where that makes sense. */
	size_t rate_limit;               /* messages per second per session */
	size_t rate_burst;               /* bucket size */
	size_t flood_close;              /* refusals within 10 s that close with 1008 */
	size_t max_rooms_per_session;
	size_t max_sessions_per_user;
	size_t max_connections_per_address;
	size_t idle_timeout;             /* seconds; read by transports */
	size_t max_json_depth;
	/* Connections the node holds at once (every TCP connection a
	 * transport accepted, sessions or not); over it, 503. Defaults to
	 * RLIMIT_NOFILE less headroom (config_default_max_connections). */
	size_t max_connections;
	size_t nofile;                   /* RLIMIT_NOFILE (soft) when read */
	char *control_socket;            /* confabctl's Unix socket; NULL = none */
	char **allowed_origins;          /* browser origins allowed; none = any */
	size_t n_allowed_origins;
	/* Authentication under attack (docs/security.md#authentication). */
	size_t max_pending_auth;         /* decisions awaited at once, node-wide */
	size_t max_pending_auth_per_address;
	size_t max_pending_auth_failing; /* ... from addresses with failed logins */
	size_t login_failures;           /* failed logins that start a lockout */
	size_t login_lockout;            /* seconds of the first lockout; 0 = off */
	size_t login_lockout_max;        /* seconds: the lockout doubles up to this */
	size_t login_throttle_entries;   /* addresses (and names) remembered */
	size_t room_ttl;                 /* seconds without activity before a room's
					  * seq and history expire; 0 = never */
	size_t max_rooms;                /* rooms with members on this node; 0 = no cap */
	size_t idem_window;              /* seconds a send's idem key is remembered */
	size_t drain_grace;              /* SIGTERM: seconds before sessions close */
	size_t drain_window;             /* seconds their closes are spread over */
	char limit_text[24][24];         /* the limits as text, in limit_keys order */
} broker_settings;

typedef struct config {
	char *path;              /* the file, as given: every error names it */
	config_section *sections;
	size_t n_sections;
	broker_settings broker;
} config;

/* Reads and checks `path`. On failure logs one error line naming the file,
 * the line, the section and the key, frees what it built and returns
 * CONFAB_EINVAL. */
int config_load(const char *path, config *cfg);
/* The same from text in memory; `name` stands for the file in errors. */
int config_load_string(const char *text, const char *name, config *cfg);
void config_free(config *cfg);

config_section *config_section_find(const config *cfg, const char *name);
/* The entry for `key` in `section` (NULL if absent); marks it used. */
config_entry *config_section_get(config_section *section, const char *key);

/* A numeric [broker] setting as the broker uses it, defaults applied: 0,
 * or CONFAB_EINVAL when `key` is not one (the host slot broker_uint). */
int config_broker_uint(const config *cfg, const char *key, uint64_t *out);

/* true/yes/on/1 or false/no/off/0 in any case: every boolean setting. */
bool config_parse_bool(const char *text, bool *out);

/* The [broker] setting `key` as text, defaults applied; NULL if unknown.
 * The string lives as long as the config. */
const char *config_broker_text(const config *cfg, const char *key);

/* Logs "FILE:LINE: [section] key: message" at error level. The line is the
 * key's line when the key is present, else the section's, else omitted. */
void config_report(const config *cfg, const char *section, const char *key,
		   const char *fmt, ...) CONFAB_PRINTF(4, 5);
void config_vreport(const config *cfg, const char *section, const char *key,
		    const char *fmt, va_list ap) CONFAB_PRINTF(4, 0);

/* A reload (reload.c): for each [broker] setting a running node keeps
 * until it restarts (node_id, plugin_dir, plugins, control_socket,
 * history_size, room_ttl, idem_window) whose value in `next` differs,
 * calls changed(key, new text, running text) and puts the running value
 * into `next`. The two configs swap what they own, so each frees its own. */
typedef void (*config_changed_fn)(const char *key, const char *now, const char *was);
void config_keep_restart_only(config *running, config *next, config_changed_fn changed);

/* max_connections when broker.ini does not set it: the descriptors this
 * process may open (RLIMIT_NOFILE, `nofile`) less headroom for what is not
 * a client connection. */
size_t config_default_max_connections(size_t nofile);

/* Splits a chain value ("ws, auth /x/y.so") into names. */
int config_split_list(const char *value, char ***out, size_t *n_out);
void config_free_list(char **list, size_t n);

#endif
