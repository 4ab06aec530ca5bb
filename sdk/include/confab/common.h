/* confab plugin SDK — common types shared by every plugin kind.
 *
 * Read plugin.h first: it holds the plugin descriptor and the host table
 * and says how the pieces fit. This file holds the small types they share.
 *
 * Conventions used throughout the SDK (they are the contract):
 *  - Threads: everything runs on the broker's single libuv loop thread.
 *    No slot is ever called from another thread, and a plugin must call
 *    host slots only from the loop thread.
 *  - Borrowing: pointer arguments are valid only for the duration of the
 *    call. The callee copies what it keeps. Whoever allocates frees.
 *  - Strings are NUL-terminated UTF-8 unless a length is given beside them.
 *  - Errors: slots that can fail return 0 or a negative CONFAB_E* code.
 *  - Tables start with a `size` field set to sizeof() of the table at build
 *    time. A reader calls a slot only if the table is long enough to hold
 *    it and the slot is non-NULL: CONFAB_HAS checks both.
 *  - Fields of ABI structs have fixed widths (uint32_t, int64_t, ...):
 *    the enums below name their values, never their storage.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_COMMON_H
#define CONFAB_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version. Major changes break plugins; minor versions only append
 * slots and fields. A host refuses a plugin whose major differs from its
 * own or whose minor is newer than its own.
 * 1.0: the first ABI.
 * 1.1: confab_auth_result gains rooms, direct and expires_ms.
 * 1.2: confab_backplane_ops gains room_ready.
 * 1.3: confab_transport_ops gains send_budget; confab_auth_ops gains
 *      cancel; confab_host gains auth (login_begin); confab_envelope
 *      gains epoch; confab_backplane_ops gains room_epoch and
 *      history_epoch (rooms expire and have epochs).
 * 1.4: confab_envelope gains idem; confab_backplane_ops gains publish_idem
 *      and direct_idem; CONFAB_EUNKNOWN (idempotent sends, unknown outcomes).
 * 1.5: confab_host_backplane gains degraded (a backplane that serves part
 *      of its rooms, e.g. a Redis Cluster with a shard down).
 * 1.6: confab_host gains config_uint, config_bool and broker_uint (typed
 *      settings that report their own errors). Enum-typed fields of ABI
 *      structs become fixed-width integers of the same size (kind,
 *      decision), CONFAB_HAS also checks that the slot is set, and
 *      CONFAB_HAS_FIELD checks a field's presence alone. Nothing moved:
 *      a plugin built against any 1.x still loads.
 * 1.7: confab_host gains metrics (confab_host_metrics, <confab/metrics.h>):
 *      a plugin's own Prometheus series, and the text of /metrics.
 * 1.8: confab_plugin gains reload and reload_finish: settings read again
 *      on SIGHUP or `confabctl reload`, all instances or none;
 *      confab_backplane_ops gains user_ready (welcome once the user is
 *      online on every node).
 * 1.9: confab_host gains checking (true under `confabd -t`, which must
 *      not fail for what the running node holds, such as its port);
 *      confab_host_transport gains session_ended (how a connection the
 *      core did not close ended: the client's close code, 1006). */
#define CONFAB_ABI_MAJOR 1
#define CONFAB_ABI_MINOR 9

/* Reading a table that may come from an older build (`t` starts with a
 * uint32_t size and may be NULL; both macros evaluate `t` several times):
 *  - CONFAB_HAS_FIELD(t, m): `t` is long enough to hold field `m`, so it
 *    may be read (an integer field, or a pointer that may be NULL);
 *  - CONFAB_HAS(t, m): the same, and the slot or pointer `m` is not NULL,
 *    so it may be called or followed. Only for pointer members.
 * Plain C: the field's end is measured from the table's own address, so no
 * compiler extension is needed and nothing past `size` is ever read. */
#define CONFAB_FIELD_END_(t, m) \
	((size_t)((const char *)&(t)->m - (const char *)(t)) + sizeof((t)->m))
#define CONFAB_HAS_FIELD(t, m) ((t) != NULL && (t)->size >= CONFAB_FIELD_END_(t, m))
#define CONFAB_HAS(t, m) (CONFAB_HAS_FIELD(t, m) && (t)->m != NULL)

#if defined(__GNUC__)
#define CONFAB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CONFAB_PRINTF(fmt, args)
#endif

/* The libuv loop, opaque here so that the SDK needs no libuv header.
 * Plugins that use libuv include <uv.h> and use it as a uv_loop_t. */
struct uv_loop_s;

/* The core's handle for one plugin instance. Opaque; passed back to every
 * host slot so that the same .so can run as several instances. Valid from
 * init until destroy returns. */
typedef struct confab_ctx confab_ctx;

/* One client session, owned by the core. Opaque. Valid from the moment the
 * core hands it out until the transport calls session_closed (or the core
 * denies it in the open callback). */
typedef struct confab_session confab_session;

/* Error codes returned as negative values. */
enum confab_error {
	CONFAB_OK = 0,
	CONFAB_ERR = -1,          /* unspecified failure; the callee logged why */
	CONFAB_ENOMEM = -2,       /* out of memory */
	CONFAB_EINVAL = -3,       /* bad argument or bad configuration */
	CONFAB_EUNAVAILABLE = -4, /* a needed service (e.g. the backplane) is down */
	CONFAB_EOFFLINE = -5,     /* the addressed user has no session anywhere */
	CONFAB_EFULL = -6,        /* a queue or limit is full */
	CONFAB_ESTATE = -7,       /* called at the wrong time (e.g. after stop) */
	CONFAB_EUNKNOWN = -8      /* ABI 1.4: the request was sent but its answer was
				   * lost (the link broke): it may have been done */
};

typedef enum confab_log_level {
	CONFAB_LOG_ERROR = 0,
	CONFAB_LOG_WARN = 1,
	CONFAB_LOG_INFO = 2,
	CONFAB_LOG_DEBUG = 3
} confab_log_level;

/* An outgoing frame, serialized once by the core and shared by every
 * recipient. Reference counted: the core holds one reference while it
 * hands the buffer to transports; a transport that keeps the buffer past
 * the send() call takes its own reference with host->buf_ref and drops it
 * with host->buf_unref when done.
 *
 * `data` has `headroom` writable bytes in front of it (at least the
 * largest `headroom` any loaded transport asked for), so a transport can
 * build its framing header in place (libwebsockets' LWS_PRE). The bytes
 * data[0..len) are never changed once the buffer is handed out; the
 * headroom may be overwritten by whichever transport is writing it. */
typedef struct confab_buf {
	unsigned char *data;
	size_t len;
	size_t headroom;
} confab_buf;

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_COMMON_H */
