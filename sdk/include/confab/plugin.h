/* confab plugin SDK — the plugin descriptor and the host table.
 *
 * A confab plugin is a shared object that exports exactly one symbol,
 * CONFAB_PLUGIN_ENTRY ("confab_plugin_entry"): a function returning a
 * pointer to a static, constant confab_plugin descriptor. Define it with
 * CONFAB_PLUGIN_DEFINE(). Build with -fvisibility=hidden so nothing else
 * is exported, and never link against the broker: everything a plugin
 * needs from the core comes through the confab_host table it is handed.
 *
 * Loading (confabd, in chain order, before any port opens):
 *   1. dlopen(RTLD_NOW | RTLD_LOCAL), dlsym(CONFAB_PLUGIN_ENTRY).
 *   2. Check the descriptor: magic, size, ABI major equal to the host's,
 *      ABI minor not newer than the host's, a known kind and that kind's
 *      ops table (size and mandatory slots). Any failure refuses the file
 *      with one line naming it.
 *   3. init(ctx, host, &state) with the plugin's config section readable
 *      through the host. `confabd -t` stops here (and calls destroy);
 *      host->checking (ABI 1.9) says which it is.
 *      If init fails, destroy is NOT called: init frees what it made.
 *   4. start(state): open ports, connect. The core starts the backplane
 *      first, then the auth plugins, then the transports (each group in
 *      chain order), so that clients arrive last. After every plugin
 *      started, the broker serves.
 *   5. stop(state) on SIGINT, or at the end of SIGTERM's drain, in the
 *      reverse order: stop accepting, close clients (the loop keeps
 *      running so the closes go out). The core waits up to 3 s for the
 *      sessions to close. During the drain before it (drain_grace, then
 *      drain_window seconds) the core refuses new sessions and closes the
 *      open ones itself, a few at a time, with the transport's close().
 *   5a. reload(state, &pending) then reload_finish(state, pending, apply)
 *      on SIGHUP or `confabctl reload` while serving (ABI 1.8, optional):
 *      see the slots below.
 *   6. destroy(state), in the reverse order (the backplane last, since
 *      closing sessions still talk to it): release everything; libuv
 *      handles are closed with uv_close and the core runs the loop until
 *      they are gone, then unloads the file.
 *
 * Kinds: transport (transport.h), backplane (backplane.h), auth (auth.h).
 * A chain has at least one transport, at most one backplane, and any
 * number of auth plugins.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_PLUGIN_H
#define CONFAB_PLUGIN_H

#include <stdbool.h>
#include <confab/common.h>
#include <confab/transport.h>
#include <confab/backplane.h>
#include <confab/auth.h>
#include <confab/metrics.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONFAB_PLUGIN_MAGIC 0x43464231u /* "CFB1" */
#define CONFAB_PLUGIN_ENTRY "confab_plugin_entry"

typedef enum confab_kind {
	CONFAB_KIND_TRANSPORT = 1,
	CONFAB_KIND_BACKPLANE = 2,
	CONFAB_KIND_AUTH = 3
} confab_kind;

typedef struct confab_host confab_host;

/* The descriptor a plugin exports. Static and constant: the core reads it
 * and never writes or frees it. Exactly one of transport/backplane/auth is
 * set, matching `kind`. */
typedef struct confab_plugin {
	uint32_t size;               /* sizeof(confab_plugin) */
	uint32_t magic;              /* CONFAB_PLUGIN_MAGIC */
	uint16_t abi_major;          /* CONFAB_ABI_MAJOR the plugin was built with */
	uint16_t abi_minor;          /* CONFAB_ABI_MINOR the plugin was built with */
	uint32_t kind;               /* a confab_kind */
	const char *name;            /* short name, e.g. "ws" */
	const char *version;         /* the plugin's own version, e.g. "1.2.0" */
	const char *description;     /* one line for `confabd -t` and logs */

	/* Lifecycle: init and destroy are mandatory, start and stop optional. */

	/* Read the config section (host->config_get), check it, allocate the
	 * instance state and return it in *state. Do not open ports or
	 * connect yet: `confabd -t` runs init and then destroy. On a bad
	 * setting call host->config_error() and return CONFAB_EINVAL. Keys of
	 * the section not read during init are reported as unknown. */
	int (*init)(confab_ctx *ctx, const confab_host *host, void **state);
	/* Optional. Begin serving (listen, connect). 0 or negative (the
	 * broker logs it, stops what started and exits 1). */
	int (*start)(void *state);
	/* Optional. Begin shutting down: stop accepting, close clients (a
	 * transport closes each WebSocket with 1001). Runs on the loop, which
	 * keeps turning afterwards so that closes are written. */
	void (*stop)(void *state);
	/* Release the instance. Called once for every successful init: also
	 * after a failed start and under `confabd -t`. Close libuv handles with
	 * uv_close; the core runs the loop until they are closed. */
	void (*destroy)(void *state);

	const confab_transport_ops *transport;
	const confab_backplane_ops *backplane;
	const confab_auth_ops *auth;

	/* ---- ABI 1.8: reload (SIGHUP, `confabctl reload`) ----
	 * Both optional, and set together. A reload is all or nothing: the
	 * core reads broker.ini again, asks every instance to prepare, and
	 * only when every one succeeded tells each to apply what it prepared
	 * (else to drop it). Sessions, connections and rooms are untouched.
	 * An instance without these slots keeps what init read; if its
	 * section changed the core logs that the change needs a restart. */

	/* Read the section again: config_get and the typed slots answer from
	 * the new file, broker_get and broker_uint from its [broker], and
	 * config_error reports against it. Check it as init would, build what
	 * is new (a users table, a key, a certificate) without using it yet,
	 * and return 0 with *pending set (NULL when nothing is to apply). On a
	 * bad setting call config_error and return CONFAB_EINVAL: the reload
	 * is refused whole and the node keeps the configuration it runs.
	 * Read every key of the section: keys not read are reported as
	 * unknown and refuse the reload, as at init. A setting that cannot
	 * change while serving (a listen address, a server to connect to) is
	 * logged once as needing a restart, and the running value kept; that
	 * does not refuse the reload. The strings config_get returns live
	 * until destroy, as at init. */
	int (*reload)(void *state, void **pending);
	/* Called once for every reload() that returned 0, after every
	 * instance prepared: apply = true to start using `pending` (for new
	 * connections and requests; what is in flight may finish with the old
	 * one), false to free it. Cannot fail; runs on the loop. */
	void (*reload_finish)(void *state, void *pending, bool apply);
} confab_plugin;

/* The table the core hands to each plugin instance at init. Borrowed:
 * valid until destroy returns. Every slot takes the instance's ctx (or a
 * session) first. Slots of another kind than the plugin's are NULL. */
struct confab_host {
	uint32_t size;               /* sizeof(confab_host) of the running core */
	uint16_t abi_major;          /* the core's ABI version */
	uint16_t abi_minor;
	const char *broker_version;  /* e.g. "0.1.0" */

	/* Log one line, prefixed with the level and the instance name. Lines
	 * below the broker's log_level are dropped. No trailing newline. */
	void (*log)(confab_ctx *ctx, confab_log_level level, const char *fmt, ...)
		CONFAB_PRINTF(3, 4);

	/* The broker's libuv loop (a uv_loop_t *). Plugins add handles to it;
	 * they never run it, stop it or close it. */
	struct uv_loop_s *(*loop)(confab_ctx *ctx);

	/* The instance name: the chain entry's base name, which is also its
	 * section name in broker.ini (e.g. "ws"). */
	const char *(*name)(confab_ctx *ctx);

	/* This node's id ([broker] node_id). */
	const char *(*node_id)(confab_ctx *ctx);

	/* The value of `key` in the instance's section, or NULL when absent.
	 * The string lives until destroy returns. Reading a key marks it known. */
	const char *(*config_get)(confab_ctx *ctx, const char *key);

	/* A setting of [broker] as text (e.g. "max_message_bytes",
	 * "history_size"), with defaults applied, or NULL for an unknown key.
	 * The string lives until destroy returns. */
	const char *(*broker_get)(confab_ctx *ctx, const char *key);

	/* Report a bad setting: logs one error line naming the file, the
	 * section, the key (and its line when known) and the message. */
	void (*config_error)(confab_ctx *ctx, const char *key, const char *fmt, ...)
		CONFAB_PRINTF(3, 4);

	/* True while the node should get new clients: every plugin started,
	 * not draining (SIGTERM) or shutting down, and the backplane up and
	 * not degraded. What /readyz reports; /healthz only says that the
	 * process serves (a transport answers it until its stop()). */
	bool (*healthy)(confab_ctx *ctx);

	/* Take / drop a reference to an outgoing frame (see confab_buf). */
	void (*buf_ref)(confab_buf *buf);
	void (*buf_unref)(confab_buf *buf);

	/* Entry points of the plugin's kind; NULL for other kinds. */
	const confab_host_transport *transport;
	const confab_host_backplane *backplane;

	/* ---- ABI 1.3 ---- */

	/* Entry points for auth plugins (confab_host_auth); NULL for other
	 * kinds. Read it only when CONFAB_HAS(host, auth). */
	const confab_host_auth *auth;

	/* ---- ABI 1.6: typed settings ----
	 * Each reads `key` of the instance's section (marking it known) and
	 * reports a bad value itself, with config_error's
	 * `FILE:LINE: [section] key: message` line, so that every plugin
	 * words the same mistake the same way. They return 0 (*out set: the
	 * value, or `def` when the key is absent) or CONFAB_EINVAL (reported;
	 * *out holds `def`): init then returns CONFAB_EINVAL. An empty value
	 * is a bad value, not an absent one. */

	/* A decimal number from `min` to `max`: digits only. */
	int (*config_uint)(confab_ctx *ctx, const char *key, uint64_t def, uint64_t min,
			   uint64_t max, uint64_t *out);
	/* true/yes/on/1 or false/no/off/0, in any case. */
	int (*config_bool)(confab_ctx *ctx, const char *key, bool def, bool *out);
	/* A numeric setting of [broker] (max_message_bytes, history_size,
	 * room_ttl, idem_window and the other limits of configuration.md),
	 * as the broker uses it, defaults applied: 0 and *out set, or
	 * CONFAB_EINVAL for a key that is not a numeric [broker] setting
	 * (nothing is reported: that is the plugin's mistake). */
	int (*broker_uint)(confab_ctx *ctx, const char *key, uint64_t *out);

	/* ---- ABI 1.7 ---- */

	/* The plugin's own Prometheus series, and the rendering of every
	 * series for /metrics (<confab/metrics.h>). Every kind has it. Read
	 * it only when CONFAB_HAS(host, metrics). */
	const confab_host_metrics *metrics;

	/* ---- ABI 1.9 ---- */

	/* True while the broker only checks the configuration (`confabd -t`):
	 * init then checks its settings as it always does, but must not fail
	 * for what a node running the same file holds (its listen port, a lock
	 * file): `confabd -t` is run beside the live node before a reload. Say
	 * so in a warning instead. False in a serving node. Read it only when
	 * CONFAB_HAS(host, checking); an older core has no -t worth knowing. */
	bool (*checking)(confab_ctx *ctx);
};

/* The signature of the exported entry point. */
typedef const confab_plugin *(*confab_plugin_entry_fn)(void);

#if defined(__GNUC__)
#define CONFAB_EXPORT __attribute__((visibility("default")))
#else
#define CONFAB_EXPORT
#endif

/* Define the exported entry point returning `descriptor` (a static const
 * confab_plugin). Use once per plugin, at file scope. */
#define CONFAB_PLUGIN_DEFINE(descriptor) \
	CONFAB_EXPORT const confab_plugin *confab_plugin_entry(void); \
	CONFAB_EXPORT const confab_plugin *confab_plugin_entry(void) \
	{ return &(descriptor); }

/* Fills the fixed fields of a descriptor; designated initialisers for the
 * rest leave unset slots NULL, so adding a slot never breaks a source. */
#define CONFAB_PLUGIN_HEADER(kind_, name_, version_) \
	.size = sizeof(confab_plugin), .magic = CONFAB_PLUGIN_MAGIC, \
	.abi_major = CONFAB_ABI_MAJOR, .abi_minor = CONFAB_ABI_MINOR, \
	.kind = (kind_), .name = (name_), .version = (version_)

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_PLUGIN_H */
