/* The Lua scripts. Each runs atomically in Redis: nothing else happens
 * between its first and its last command, which is what gives every room
 * one order (seq, history and the published stream agree).
 *
 * Every script takes ARGV[1] = the key prefix P and ARGV[2] = the channel
 * prefix C, and all but PUBLISH start with the same prelude of helpers. Keys (see
 * docs/backplane-redis.md):
 *   P room:R:seq      string  the room's last seq (INCR)
 *   P room:R:hist     list    the room's last messages, oldest first: at least
 *                             history_size (when there are as many), at most
 *                             HIST_SLACK more (trimmed in steps; see below)
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

/* One message of the publish scripts, written once for both: with `seq`
 * INCR'd and `due` set when the node asks for a refresh. Only the first
 * message of a room's life (seq 1) reads the epoch (or makes it) and
 * carries it: the nodes, which receive a room's messages in seq order,
 * remember it from there and from the joins' epoch script, and label the
 * messages that follow with it (redis_ops.c). A GET of the epoch for every
 * message was most of what epochs cost Redis per message. Then builds
 * `msg`, keeps it in history and refreshes the record when due (or when
 * a key was made). */
#define PUBLISH_ONE(kseq, khist, kepoch, head_a, head_b, body) \
	"  local tag = ''\n" \
	"  if seq == 1 then\n" \
	"    local e = redis.call('GET', " kepoch ")\n" \
	"    if not e then\n" \
	"      e = fresh\n" \
	"      redis.call('SET', " kepoch ", e)\n" \
	"    end\n" \
	"    tag = ',\"epoch\":\"' .. e .. '\"'\n" \
	"    due = true\n" \
	"  end\n" \
	"  local msg = " head_a " .. string.format('%d', seq) .. tag .. " head_b " .. '\\n' .. " body "\n" \
	"  if keep > 0 then\n" \
	"    local n = redis.call('RPUSH', " khist ", msg)\n" \
	"    if n == 1 then due = true end\n" \
	"    if n > keep + " RSCRIPT_HIST_SLACK " then\n" \
	"      redis.call('LTRIM', " khist ", -keep, -1)\n" \
	"    end\n" \
	"  else\n" \
	"    redis.call('DEL', " khist ")\n" \
	"  end\n" \
	RSCRIPT_RECORD_DUE(kseq, khist, kepoch, "ttl")

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
	"local ik = ARGV[11]\n" \
	"if ik == '' then ik = nil end\n" \
	"if ik then\n" \
	"  local first = redis.call('GET', ik)\n" \
	"  if first then return first end\n" \
	"end\n" \
	"local seq = redis.call('INCR', KEYS[1])\n" \
	"local due = ARGV[10] == '1'\n" \
	"do\n" \
	PUBLISH_ONE("KEYS[1]", "KEYS[2]", "KEYS[3]", "ARGV[4]", "ARGV[5]", "ARGV[6]") \
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
	PUBLISH_ONE("KEYS[k]", "KEYS[k + 1]", "KEYS[k + 2]", "ARGV[a + 1]", "ARGV[a + 2]", \
		    "ARGV[a + 3]") \
	"  redis.call('PUBLISH', C .. 'room:' .. ARGV[a], msg)\n" \
	"  seqs[i] = seq\n" \
	"end\n" \
	"return seqs\n"

/* KEYS: seq, hist, epoch. ARGV[3..5]: room_ttl, fresh epoch, room (for
 * the node's reply handler). A join: returns the room's epoch, creating
 * the record when there is none. */
#define EPOCH_LUA RSCRIPT_RECORD \
	"local e, made = epoch(KEYS[3], ARGV[4])\n" \
	"refresh(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[3]), made)\n" \
	"return e\n"

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
	"local ik = ARGV[6]\n" \
	"if ik == '' then ik = nil end\n" \
	"if ik then\n" \
	"  local first = redis.call('GET', ik)\n" \
	"  if first then return first end\n" \
	"end\n" \
	"local alive = now_ms() - tonumber(ARGV[5])\n" \
	"local reached = 0\n" \
	"for _, node in ipairs(redis.call('SMEMBERS', P .. 'user:' .. ARGV[3])) do\n" \
	"  local seen = redis.call('ZSCORE', P .. 'nodes', node)\n" \
	"  if seen and tonumber(seen) >= alive\n" \
	"     and redis.call('PUBLISH', C .. 'node:' .. node, ARGV[4]) > 0 then\n" \
	"    reached = reached + 1\n" \
	"  end\n" \
	"end\n" \
	"if ik and reached > 0 then\n" \
	"  redis.call('SET', ik, '0 ' .. ARGV[8] .. ' ' .. ARGV[9], 'EX', ARGV[7])\n" \
	"end\n" \
	"return reached\n"

/* ARGV[3..6]: node, generation, room, user. Each returns 0 (and does
 * nothing) when the generation is stale, else 1. */
#define IF_CURRENT "if not current(ARGV[3], ARGV[4]) then return 0 end\n"
#define JOIN_LUA PRELUDE IF_CURRENT "join(ARGV[3], ARGV[5], ARGV[6])\nreturn 1\n"
#define LEAVE_LUA PRELUDE IF_CURRENT "leave(ARGV[3], ARGV[5], ARGV[6])\nreturn 1\n"
/* ARGV[3..5]: node, generation, user. */
#define ONLINE_LUA PRELUDE IF_CURRENT "online(ARGV[3], ARGV[5])\nreturn 1\n"
#define OFFLINE_LUA PRELUDE IF_CURRENT "offline(ARGV[3], ARGV[5])\nreturn 1\n"

/* ARGV[3..5]: node, generation, presence_ttl in ms. Records this node's
 * heartbeat and forgets every other node silent for longer than the ttl
 * (its members leave, with events). Returns {1 if this node was not
 * registered (it had been forgotten itself, or its generation is not the
 * current one: then nothing of it is recorded), forgotten nodes...}. */
#define HEARTBEAT_LUA PRELUDE \
	"local node = ARGV[3]\n" \
	"local now = now_ms()\n" \
	"local out = { 1 }\n" \
	"if current(node, ARGV[4]) then\n" \
	"  out[1] = redis.call('ZADD', P .. 'nodes', string.format('%d', now), node)\n" \
	"end\n" \
	"local cutoff = '(' .. string.format('%d', now - tonumber(ARGV[5]))\n" \
	"for _, gone in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '-inf', cutoff)) do\n" \
	"  if gone ~= node then\n" \
	"    forget(gone)\n" \
	"    out[#out + 1] = gone\n" \
	"  end\n" \
	"end\n" \
	"return out\n"

/* ARGV[3]: node; ARGV[4]: the generation of its link; ARGV[5]: n; then n
 * "R<TAB>U" entries, then users. Makes Redis's record of the node equal to
 * the lists, with member events for what changed (join and online are
 * idempotent, so entries Redis already has change nothing), and makes the
 * generation the node's current one. Returns 1; or, when Redis knows a
 * newer generation of the node (an old link's reconcile replayed late,
 * or a clock that went back across a restart), does nothing and returns
 * that generation as a string (redis_ops.c then tries again above it). */
#define RECONCILE_LUA PRELUDE \
	"local node, gen, np = ARGV[3], ARGV[4], tonumber(ARGV[5])\n" \
	"local kgen = P .. 'node:' .. node .. ':gen'\n" \
	"local known = redis.call('GET', kgen)\n" \
	"if known and tonumber(known) > tonumber(gen) then return known end\n" \
	"redis.call('SET', kgen, gen)\n" \
	"local want = {}\n" \
	"for i = 6, 5 + np do want[ARGV[i]] = true end\n" \
	"for _, e in ipairs(redis.call('SMEMBERS', P .. 'node:' .. node .. ':pres')) do\n" \
	"  if not want[e] then\n" \
	"    local room, user = split(e)\n" \
	"    leave(node, room, user)\n" \
	"  end\n" \
	"end\n" \
	"for i = 6, 5 + np do\n" \
	"  local room, user = split(ARGV[i])\n" \
	"  join(node, room, user)\n" \
	"end\n" \
	"local users = {}\n" \
	"for i = 6 + np, #ARGV do users[ARGV[i]] = true end\n" \
	"for _, user in ipairs(redis.call('SMEMBERS', P .. 'node:' .. node .. ':users')) do\n" \
	"  if not users[user] then offline(node, user) end\n" \
	"end\n" \
	"for i = 6 + np, #ARGV do online(node, ARGV[i]) end\n" \
	"redis.call('ZADD', P .. 'nodes', string.format('%d', now_ms()), node)\n" \
	"return 1\n"

/* KEYS: seq, hist, epoch. ARGV[3..9]: has_since ("1"/"0"), since, limit,
 * history_size, the epoch the client knows ("" for none), room_ttl, fresh
 * epoch. Returns {truncated (1/0), epoch, messages oldest first...}: the
 * same answer as the embedded backplane's history (the list may hold up
 * to HIST_SLACK older ones than history_size: they are not served). A
 * known epoch other than the room's asks for everything kept, truncated. */
#define HISTORY_LUA RSCRIPT_RECORD \
	"local e, made = epoch(KEYS[3], ARGV[9])\n" \
	"refresh(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[8]), made)\n" \
	"local other = ARGV[7] ~= '' and ARGV[7] ~= e\n" \
	"local last = tonumber(redis.call('GET', KEYS[1]) or '0')\n" \
	"local stored = redis.call('LLEN', KEYS[2])\n" \
	"local list_first = last - stored + 1\n" \
	"local kept = math.min(stored, tonumber(ARGV[6]))\n" \
	"local first_kept = last - kept + 1\n" \
	"local limit = tonumber(ARGV[5])\n" \
	"local want\n" \
	"if other then\n" \
	"  want = 1\n" \
	"elseif ARGV[3] == '1' then\n" \
	"  want = tonumber(ARGV[4]) + 1\n" \
	"elseif last >= limit then\n" \
	"  want = last - limit + 1\n" \
	"else\n" \
	"  want = 1\n" \
	"end\n" \
	"if limit == 0 or want > last then return { other and 1 or 0, e } end\n" \
	"local truncated = other or first_kept > want\n" \
	"local from = want\n" \
	"if truncated then from = first_kept end\n" \
	"local n = math.min(last - from + 1, limit)\n" \
	"local out = { truncated and 1 or 0, e }\n" \
	"if n > 0 then\n" \
	"  local i = from - list_first\n" \
	"  for _, m in ipairs(redis.call('LRANGE', KEYS[2], i, i + n - 1)) do\n" \
	"    out[#out + 1] = m\n" \
	"  end\n" \
	"end\n" \
	"return out\n"

/* ARGV[3..4]: node, generation. A clean shutdown: its members leave now
 * rather than after presence_ttl. */
#define GOODBYE_LUA PRELUDE IF_CURRENT "forget(ARGV[3])\nreturn 1\n"

const char *const redis_script_text[SCRIPT_COUNT] = {
	[SCRIPT_PUBLISH] = PUBLISH_LUA,
	[SCRIPT_DIRECT] = DIRECT_LUA,
	[SCRIPT_JOIN] = JOIN_LUA,
	[SCRIPT_LEAVE] = LEAVE_LUA,
	[SCRIPT_ONLINE] = ONLINE_LUA,
	[SCRIPT_OFFLINE] = OFFLINE_LUA,
	[SCRIPT_HEARTBEAT] = HEARTBEAT_LUA,
	[SCRIPT_RECONCILE] = RECONCILE_LUA,
	[SCRIPT_HISTORY] = HISTORY_LUA,
	[SCRIPT_GOODBYE] = GOODBYE_LUA,
	[SCRIPT_PUBLISH_BATCH] = PUBLISH_BATCH_LUA,
	[SCRIPT_PRESENCE_BATCH] = PRESENCE_BATCH_LUA,
	[SCRIPT_EPOCH] = EPOCH_LUA,
};

const char *const redis_script_name[SCRIPT_COUNT] = {
	[SCRIPT_PUBLISH] = "publish",
	[SCRIPT_DIRECT] = "direct",
	[SCRIPT_JOIN] = "join",
	[SCRIPT_LEAVE] = "leave",
	[SCRIPT_ONLINE] = "online",
	[SCRIPT_OFFLINE] = "offline",
	[SCRIPT_HEARTBEAT] = "heartbeat",
	[SCRIPT_RECONCILE] = "reconcile",
	[SCRIPT_HISTORY] = "history",
	[SCRIPT_GOODBYE] = "goodbye",
	[SCRIPT_PUBLISH_BATCH] = "publish_batch",
	[SCRIPT_PRESENCE_BATCH] = "presence_batch",
	[SCRIPT_EPOCH] = "epoch",
};
