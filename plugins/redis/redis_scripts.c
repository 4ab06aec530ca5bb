/* The Lua scripts. Each runs atomically in Redis: nothing else happens
 * between its first and its last command, which is what gives every room
 * one order (seq, history and the published stream agree).
 *
 * Every script takes ARGV[1] = the key prefix P and ARGV[2] = the channel
 * prefix C, and all but PUBLISH start with the same prelude of helpers.
 * The pieces that redis_cluster's scripts share are in
 * ../redislink/rscript.h, which says why each step is there. Keys (see
 * docs/backplane-redis.md):
 *   P room:R:seq      string  the room's last seq (INCR)
 *   P room:R:hist     list    the room's last messages, oldest first: at least
 *                             history_size (when there are as many), at most
 *                             RSCRIPT_HIST_SLACK more (trimmed in steps)
 *   P room:R:epoch    string  the room's epoch: set (SET when absent, with the
 *                             random text the node passes) the first time the
 *                             room is used after it did not exist; only a
 *                             life's first message (seq 1) carries it
 * The three are the room's record. Every script that uses a room (publish,
 * epoch, history) keeps the three expiring together, room_ttl to room_ttl
 * + room_ttl/16 after the room's last use (refresh() below); room_ttl 0
 * sets no EXPIRE.
 *   P pres:R          set     users present in room R on some node
 *   P pres:R/U        set     nodes where user U is in room R
 *   P user:U          set     nodes where user U has a session
 *   P node:N:pres     set     "R<TAB>U" entries node N registered
 *   P node:N:users    set     users node N registered
 *   P node:N:gen      string  the generation of node N's current link: set
 *                             by its reconcile; every script that writes the
 *                             node's state (presence, users, heartbeat,
 *                             goodbye) carries its link's generation and does
 *                             nothing unless it is this one. A script sent on
 *                             a link that failed can reach Redis late (held in
 *                             kernel buffers, retransmitted after a partition
 *                             heals), after the node reconnected and
 *                             reconciled: it must not undo the reconcile.
 *   P nodes           zset    node -> last heartbeat, ms (Redis's clock)
 *   P idem:m:R/U/K    string  "SEQ ID TS" of the message user U sent to room R
 *                             with idem key K, for idem_window seconds (EX)
 *   P idem:d:U/T/K    string  "0 ID TS" of U's direct message to T with key K
 * Channels: C room:R (messages, member events), C node:N (direct
 * messages to node N, its probes).
 *
 * Room and user names never hold '/', a tab or a quote (the core checks
 * them), so "pres:R/U" is unambiguous and names go into JSON unescaped.
 *
 * SPDX-License-Identifier: MIT
 */
#include "redis.h"
#include "rscript.h"

/* The prelude's member events go to the room's channel. */
#define PRELUDE RSCRIPT_PRELUDE("'PUBLISH', C .. 'room:' .. room")

/* KEYS: seq, hist, epoch. ARGV[3..10]: room, head_a, head_b, body,
 * history_size, room_ttl, fresh epoch, refresh ("1": the node asks for
 * it). Returns the seq. The one script run for a message alone.
 *
 * Idempotent sends: ARGV[11..14], when given, are the idem key's name
 * ("" for none; P idem:m:R/U/K), idem_window in seconds, the message's id
 * and ts. A key that exists makes the call a repeat: nothing is done and
 * its value, "SEQ ID TS" of the first message, is returned (a string,
 * where a new message returns the seq, an integer). Otherwise the key is
 * set, with the window as its EX, in the same call that orders the
 * message: two nodes cannot both take it. */
#define PUBLISH_LUA \
	"local C, keep, ttl, fresh = ARGV[2], tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]\n" \
	RSCRIPT_IDEM_REPEAT("11") \
	"local seq = redis.call('INCR', KEYS[1])\n" \
	"local due = ARGV[10] == '1'\n" \
	"do\n" \
	RSCRIPT_PUBLISH_ONE("KEYS[1]", "KEYS[2]", "KEYS[3]", "ARGV[4]", "ARGV[5]", "ARGV[6]") \
	"  redis.call('PUBLISH', C .. 'room:' .. ARGV[3], msg)\n" \
	"end\n" \
	"if ik then\n" \
	"  redis.call('SET', ik, string.format('%d', seq) .. ' ' .. ARGV[13] .. ' ' .. ARGV[14],\n" \
	"    'EX', ARGV[12])\n" \
	"end\n" \
	"return seq\n"

/* The publish script for n messages at once (redis_batch.c). KEYS: seq,
 * hist and epoch of each message. ARGV[3..5]: history_size, room_ttl,
 * fresh epoch; then room, head_a, head_b, body, refresh of each. Returns
 * the seqs, in order. Rooms created in the same call get the same fresh
 * epoch: an epoch has to differ only from the same room's earlier ones. */
#define PUBLISH_BATCH_LUA \
	"local C, keep, ttl, fresh = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]\n" \
	"local seqs = {}\n" \
	"for i = 1, #KEYS / 3 do\n" \
	"  local a, k = 5 * i + 1, 3 * i - 2\n" \
	"  local seq = redis.call('INCR', KEYS[k])\n" \
	"  local due = ARGV[a + 4] == '1'\n" \
	RSCRIPT_PUBLISH_ONE("KEYS[k]", "KEYS[k + 1]", "KEYS[k + 2]", "ARGV[a + 1]", "ARGV[a + 2]", \
		    "ARGV[a + 3]") \
	"  redis.call('PUBLISH', C .. 'room:' .. ARGV[a], msg)\n" \
	"  seqs[i] = seq\n" \
	"end\n" \
	"return seqs\n"

/* Joins, leaves, onlines and offlines of one node at once
 * (redis_batch.c). ARGV[3..4]: node, its link's generation (nothing is
 * done when it is not the current one: returns 0); then op, room, user for each, op one of
 * j(oin), l(eave), o(nline), f (offline; the room is empty for o and f). */
#define PRESENCE_BATCH_LUA PRELUDE \
	"local node = ARGV[3]\n" \
	"if not current(node, ARGV[4]) then return 0 end\n" \
	"for i = 5, #ARGV, 3 do\n" \
	"  local op, room, user = ARGV[i], ARGV[i + 1], ARGV[i + 2]\n" \
	"  if op == 'j' then join(node, room, user)\n" \
	"  elseif op == 'l' then leave(node, room, user)\n" \
	"  elseif op == 'o' then online(node, user)\n" \
	"  else offline(node, user) end\n" \
	"end\n" \
	"return 1\n"

/* ARGV[3..5]: user, message, presence_ttl in ms. Publishes to every live
 * node where the user has a session; returns how many took it.
 * ARGV[6..9], when given: the idem key's name ("" for none; P
 * idem:d:U/T/K), idem_window, the message's id and ts, as for PUBLISH;
 * the key is set only when some node took the message. */
#define DIRECT_LUA PRELUDE \
	RSCRIPT_DIRECT_HEAD \
	"  if seen and tonumber(seen) >= alive\n" \
	"     and redis.call('PUBLISH', C .. 'node:' .. node, ARGV[4]) > 0 then\n" \
	"    reached = reached + 1\n" \
	"  end\n" \
	"end\n" \
	RSCRIPT_DIRECT_DONE

/* KEYS: seq, hist, epoch. ARGV[3..9]: has_since ("1"/"0"), since, limit,
 * history_size, the epoch the client knows ("" for none), room_ttl, fresh
 * epoch. Returns {truncated (1/0), epoch, messages oldest first...}: the
 * same answer as the embedded backplane's history (the list may hold up
 * to RSCRIPT_HIST_SLACK older ones than history_size: they are not served). A
 * known epoch other than the room's asks for everything kept, truncated. */
#define HISTORY_LUA \
	RSCRIPT_HISTORY_HEAD \
	RSCRIPT_HISTORY_SERVE

const char *const redis_script_text[SCRIPT_COUNT] = {
	RSCRIPT_TEXTS(SCRIPT_, PRELUDE, PUBLISH_LUA, DIRECT_LUA, HISTORY_LUA, PUBLISH_BATCH_LUA),
	[SCRIPT_PRESENCE_BATCH] = PRESENCE_BATCH_LUA,
};

const char *const redis_script_name[SCRIPT_COUNT] = {
	RSCRIPT_NAMES(SCRIPT_),
	[SCRIPT_PRESENCE_BATCH] = "presence_batch",
};
