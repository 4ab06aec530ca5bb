/* The Lua scripts, cluster form. The logic is the `redis` backplane's
 * (plugins/redis/redis_scripts.c, and ../redislink/rscript.h for the
 * pieces both share, say why each step is there); what differs:
 *   - ARGV[1] is the partition's key prefix P ("{tag}") and ARGV[2] its
 *     channel C ("{tag}ch"): every key a script touches, and the channel,
 *     share the partition's slot, which Redis Cluster requires of a script;
 *   - every script declares at least one key of its partition in KEYS,
 *     so that Redis checks that it runs on the slot's owner (a script
 *     sent to the wrong master gets MOVED/ASK before doing anything);
 *   - publishing is SPUBLISH to C (sharded pub/sub: the message travels
 *     within the shard only), never PUBLISH;
 *   - this node's presence record (node:N:pres, node:N:users, node:N:gen,
 *     nodes) is per partition: the room and user entries of partition k
 *     live in k, with the heartbeat that keeps them.
 * The config record is the only key outside the partitions.
 *
 * SPDX-License-Identifier: MIT
 */
#include "cluster.h"
#include "rscript.h"

/* The prelude's member events go to the partition's channel, sharded. */
#define PRELUDE RSCRIPT_PRELUDE("'SPUBLISH', C")

/* KEYS: seq, hist, epoch (in the room's partition), and the idem key
 * when there is one. ARGV: P, C, room, head_a, head_b, body, history_size,
 * room_ttl, fresh epoch, refresh, defer, then the idem key ("" for none),
 * idem_window, id, ts. Returns the seq, or a repeat's "SEQ ID TS". As
 * redis's PUBLISH_LUA, with SPUBLISH to C; but with defer ("1", when the
 * node waits for replicas) nothing is published here: the node publishes
 * the message with the flush script once WAIT says the replicas have it.
 * A message that a failover loses is then never seen live, so the seq
 * the promoted replica gives the next message names one message only.
 * The list then keeps at least 64 messages (history serves history_size
 * of them), which is where the flush reads them. */
#define PUBLISH_LUA \
	"local C, keep, ttl, fresh = ARGV[2], tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]\n" \
	"local defer = ARGV[11] == '1'\n" \
	RSCRIPT_IDEM_REPEAT("12") \
	"if defer and keep < 64 then keep = 64 end\n" \
	"local seq = redis.call('INCR', KEYS[1])\n" \
	"local due = ARGV[10] == '1'\n" \
	"do\n" \
	RSCRIPT_PUBLISH_ONE("KEYS[1]", "KEYS[2]", "KEYS[3]", "ARGV[4]", "ARGV[5]", "ARGV[6]") \
	"  if not defer then redis.call('SPUBLISH', C, msg) end\n" \
	"end\n" \
	"if ik then\n" \
	"  redis.call('SET', ik, string.format('%d', seq) .. ' ' .. ARGV[14] .. ' ' .. ARGV[15],\n" \
	"    'EX', ARGV[13])\n" \
	"end\n" \
	"return seq\n"

/* KEYS: seq, hist, pub (room:R:pub: the last seq published) of each
 * room, all in one partition. ARGV: P, C, then each room's `up_to`.
 * Publishes, in seq order, each room's stored messages after pub up to
 * its `up_to` (a seq the replicas are known to have: so are all before
 * it), and moves pub there. Any node's flush publishes what other nodes
 * wait for, once: a room's messages go out in seq order, and none twice
 * except when a pub write itself is lost in a failover (the nodes drop a
 * seq they delivered already). pub expires with the room's seq key; a pub
 * that is missing or above the room's seq (an earlier life's) starts at 1
 * when the list still holds the life's first message (a new room), else
 * at `up_to`: the nodes read any gap from history. Returns how many. */
#define FLUSH_LUA \
	"local out = 0\n" \
	"for i = 1, #KEYS / 3 do\n" \
	"  local kseq, khist, kpub = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]\n" \
	"  local last = tonumber(redis.call('GET', kseq) or '0')\n" \
	"  local up_to = math.min(tonumber(ARGV[2 + i]), last)\n" \
	"  local pub = tonumber(redis.call('GET', kpub) or '-1')\n" \
	"  local n = redis.call('LLEN', khist)\n" \
	"  local first = last - n + 1\n" \
	"  local from = pub + 1\n" \
	"  if pub < 0 or pub > last then\n" \
	"    if first <= 1 then from = 1 else from = up_to end\n" \
	"  end\n" \
	"  if from <= up_to and up_to >= 1 then\n" \
	"    if from < first then from = first end\n" \
	"    if from <= up_to then\n" \
	"      for _, m in ipairs(redis.call('LRANGE', khist, from - first, up_to - first)) do\n" \
	"        redis.call('SPUBLISH', ARGV[2], m)\n" \
	"        out = out + 1\n" \
	"      end\n" \
	"    end\n" \
	"    local ttl = redis.call('PTTL', kseq)\n" \
	"    if ttl > 0 then\n" \
	"      redis.call('SET', kpub, up_to, 'PX', ttl)\n" \
	"    else\n" \
	"      redis.call('SET', kpub, up_to)\n" \
	"    end\n" \
	"  end\n" \
	"end\n" \
	"return out\n"

/* The publish script for n messages of one partition at once (the
 * publishes of one loop turn: cluster_batch.c). KEYS: seq, hist, epoch of
 * each. ARGV: P, C, history_size, room_ttl, fresh epoch, defer; then
 * room, head_a, head_b, body, refresh of each. Returns the seqs, in
 * order. Each message is PUBLISH_LUA's (never with an idem key: those go
 * alone). */
#define PUBLISH_BATCH_LUA \
	"local C, keep, ttl, fresh = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]\n" \
	"local defer = ARGV[6] == '1'\n" \
	"if defer and keep < 64 then keep = 64 end\n" \
	"local seqs = {}\n" \
	"for i = 1, #KEYS / 3 do\n" \
	"  local a, k = 5 * i + 2, 3 * i - 2\n" \
	"  local seq = redis.call('INCR', KEYS[k])\n" \
	"  local due = ARGV[a + 4] == '1'\n" \
	RSCRIPT_PUBLISH_ONE("KEYS[k]", "KEYS[k + 1]", "KEYS[k + 2]", "ARGV[a + 1]", "ARGV[a + 2]", \
			    "ARGV[a + 3]") \
	"  if not defer then redis.call('SPUBLISH', C, msg) end\n" \
	"  seqs[i] = seq\n" \
	"end\n" \
	"return seqs\n"

/* KEYS[1]: P nodes (the user's partition). ARGV[3..5]: user, message,
 * presence_ttl in ms; [6..9] the idem key, window, id, ts. One SPUBLISH
 * to the user's partition channel when some live node has the user: the
 * nodes subscribed there deliver it to the user's sessions, if they have
 * any (the message's "to"). Returns how many live nodes have the user. */
#define DIRECT_LUA PRELUDE \
	RSCRIPT_DIRECT_HEAD \
	"  if seen and tonumber(seen) >= alive then reached = reached + 1 end\n" \
	"end\n" \
	"if reached > 0 and redis.call('SPUBLISH', C, ARGV[4]) == 0 then reached = 0 end\n" \
	RSCRIPT_DIRECT_DONE

/* KEYS: seq, hist, epoch, pub. ARGV: as redis's HISTORY_LUA (P, C,
 * has_since, since, limit, history_size, known epoch, room_ttl, fresh
 * epoch), then defer ("1" with ack_replicas), room. As redis's
 * HISTORY_LUA, except that with defer it serves messages up to the last
 * one published (pub: see FLUSH_LUA) only: a message that WAIT has not
 * confirmed yet is in nobody's view, live or history, so one that a
 * failover loses was never seen under its seq. */
#define HISTORY_LUA \
	RSCRIPT_HISTORY_HEAD \
	"if ARGV[10] == '1' then\n" \
	"  local pub = tonumber(redis.call('GET', KEYS[4]) or '-1')\n" \
	"  if pub >= 0 and pub <= real then\n" \
	"    last = pub\n" \
	"  elseif list_first <= 1 then\n" \
	"    last = 0\n" \
	"  end\n" \
	"end\n" \
	RSCRIPT_HISTORY_SERVE

/* KEYS[1]: the config record. ARGV[1]: this node's layout. Sets it when
 * absent; returns the record. */
#define CONFIG_LUA \
	"redis.call('SET', KEYS[1], ARGV[1], 'NX')\n" \
	"return redis.call('GET', KEYS[1])\n"

/* One call for the requests of several partitions served by one master
 * (cluster_cmd.c, "per master"): each segment is one of the per-partition
 * scripts above, run as a function of its own KEYS and ARGV, in order.
 *
 * Redis 7.0 refuses a script whose *declared* keys span slots, flag or
 * not (CROSSSLOT, measured on 7.0.15): allow-cross-slot-keys only lets it
 * reach undeclared keys of other slots this node serves. And a script
 * that reaches a key this node does not serve (another master's, a
 * migrating slot's moved key, an importing slot's without ASKING) stops
 * there with an error, after what it wrote before. So the call declares
 * no key, and first probes every key each segment would have declared,
 * with one EXISTS per segment under redis.pcall, which gives that error
 * as a value: any refused probe answers "XSLOT" before anything is
 * written, and the node sends each segment alone, the way it always did
 * (MOVED, ASK, TRYAGAIN follow there).
 *
 * ARGV: n, then name, #keys, #args of each segment, then each segment's
 * keys and args. Returns each segment's reply in order (a segment's own
 * error, such as a heartbeat that met an undeclared key being migrated,
 * as an error element: that segment alone is sent again). */
#define MULTI_BODY(name, text) "B['" name "'] = function(KEYS, ARGV)\n" text "end\n"
#define MULTI_LUA \
	"#!lua flags=allow-cross-slot-keys\n" \
	"local B = {}\n" \
	MULTI_BODY("publish", PUBLISH_LUA) \
	MULTI_BODY("publish_batch", PUBLISH_BATCH_LUA) \
	MULTI_BODY("flush", FLUSH_LUA) \
	MULTI_BODY("heartbeat", RSCRIPT_HEARTBEAT(PRELUDE)) \
	"local n = tonumber(ARGV[1])\n" \
	"local segs, pos = {}, 2 + 3 * n\n" \
	"for i = 1, n do\n" \
	"  local nk, na = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])\n" \
	"  local keys, args = {}, {}\n" \
	"  for j = 1, nk do keys[j] = ARGV[pos + j - 1] end\n" \
	"  pos = pos + nk\n" \
	"  for j = 1, na do args[j] = ARGV[pos + j - 1] end\n" \
	"  pos = pos + na\n" \
	"  for j = 1, nk, 200 do\n" \
	"    local r = redis.pcall('EXISTS', unpack(keys, j, math.min(j + 199, nk)))\n" \
	"    if type(r) == 'table' and r.err then\n" \
	"      return redis.error_reply('XSLOT segment ' .. i .. ': ' .. r.err)\n" \
	"    end\n" \
	"  end\n" \
	"  segs[i] = { B[ARGV[3 * i - 1]], keys, args }\n" \
	"end\n" \
	"local out = {}\n" \
	"for i = 1, n do\n" \
	"  local ok, r = pcall(segs[i][1], segs[i][2], segs[i][3])\n" \
	"  if not ok then\n" \
	"    if type(r) == 'table' and r.err then r = r.err end\n" \
	"    r = redis.error_reply(tostring(r))\n" \
	"  elseif r == nil then\n" \
	"    r = false\n" \
	"  end\n" \
	"  out[i] = r\n" \
	"end\n" \
	"return out\n"

/* The presence scripts (join, leave, online, offline, heartbeat,
 * reconcile, goodbye: ../redislink/rscript.h) declare KEYS[1] = P nodes,
 * their partition's, so that Redis routes them; their ARGV are redis's. */
const char *const cl_script_text[CS_COUNT] = {
	RSCRIPT_TEXTS(CS_, PRELUDE, PUBLISH_LUA, DIRECT_LUA, HISTORY_LUA, PUBLISH_BATCH_LUA),
	[CS_CONFIG] = CONFIG_LUA,
	[CS_FLUSH] = FLUSH_LUA,
	[CS_MULTI] = MULTI_LUA,
};

const char *const cl_script_name[CS_COUNT] = {
	RSCRIPT_NAMES(CS_),
	[CS_CONFIG] = "config",
	[CS_FLUSH] = "flush",
	[CS_MULTI] = "multi",
};
