/* The Lua that both Redis backplanes' scripts share, as string literals to
 * splice into them: the prelude of presence helpers (with the command that
 * publishes a member event as the parameter: PUBLISH to the room's channel,
 * or SPUBLISH to the partition's) and the room record's expiry helpers.
 * plugins/redis/redis_scripts.c says why each step is there.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RSCRIPT_H
#define CONFAB_RSCRIPT_H

/* How long a forgotten node's generation key is kept: a script of one of
 * its old links that arrives later than that (TCP gives up retransmitting
 * after about 15 minutes) could act again. A day, so that a node id does
 * not leave a key behind for ever. */
#define RSCRIPT_GEN_KEEP_MS "86400000"

/* A room's history list is trimmed back to history_size only when it has
 * grown HIST_SLACK past it: an LTRIM on every message was a tenth of
 * Redis's work per message. The history script serves only the last
 * history_size. */
#define RSCRIPT_HIST_SLACK "64"

/* The helpers every script but PUBLISH starts with: P and C from ARGV[1]
 * and ARGV[2]; now_ms; join, leave, online, offline of a node's presence
 * record (a room's first member and last leaver publish a member event
 * with `member_publish`, the Lua of a redis.call's first arguments before
 * the payload); current (the node's generation); forget (a node's whole
 * record). */
#define RSCRIPT_PRELUDE(member_publish) \
	"local P, C = ARGV[1], ARGV[2]\n" \
	"local function now_ms()\n" \
	"  local t = redis.call('TIME')\n" \
	"  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
	"end\n" \
	"local function member_event(kind, room, user)\n" \
	"  redis.call(" member_publish ",\n" \
	"    '{\"k\":\"' .. kind .. '\",\"room\":\"' .. room .. '\",\"from\":\"' .. user .. '\"}')\n" \
	"end\n" \
	"local function join(node, room, user)\n" \
	"  redis.call('SADD', P .. 'pres:' .. room .. '/' .. user, node)\n" \
	"  redis.call('SADD', P .. 'node:' .. node .. ':pres', room .. '\\t' .. user)\n" \
	"  if redis.call('SADD', P .. 'pres:' .. room, user) == 1 then\n" \
	"    member_event('j', room, user)\n" \
	"  end\n" \
	"end\n" \
	"local function leave(node, room, user)\n" \
	"  local where = P .. 'pres:' .. room .. '/' .. user\n" \
	"  redis.call('SREM', where, node)\n" \
	"  redis.call('SREM', P .. 'node:' .. node .. ':pres', room .. '\\t' .. user)\n" \
	"  if redis.call('SCARD', where) == 0\n" \
	"     and redis.call('SREM', P .. 'pres:' .. room, user) == 1 then\n" \
	"    member_event('l', room, user)\n" \
	"  end\n" \
	"end\n" \
	"local function online(node, user)\n" \
	"  redis.call('SADD', P .. 'user:' .. user, node)\n" \
	"  redis.call('SADD', P .. 'node:' .. node .. ':users', user)\n" \
	"end\n" \
	"local function offline(node, user)\n" \
	"  redis.call('SREM', P .. 'user:' .. user, node)\n" \
	"  redis.call('SREM', P .. 'node:' .. node .. ':users', user)\n" \
	"end\n" \
	"local function split(entry)\n" \
	"  local tab = string.find(entry, '\\t', 1, true)\n" \
	"  return string.sub(entry, 1, tab - 1), string.sub(entry, tab + 1)\n" \
	"end\n" \
	"local function current(node, gen)\n" \
	"  return redis.call('GET', P .. 'node:' .. node .. ':gen') == gen\n" \
	"end\n" \
	"local function forget(node)\n" \
	"  for _, e in ipairs(redis.call('SMEMBERS', P .. 'node:' .. node .. ':pres')) do\n" \
	"    local room, user = split(e)\n" \
	"    leave(node, room, user)\n" \
	"  end\n" \
	"  for _, user in ipairs(redis.call('SMEMBERS', P .. 'node:' .. node .. ':users')) do\n" \
	"    offline(node, user)\n" \
	"  end\n" \
	"  redis.call('DEL', P .. 'node:' .. node .. ':pres', P .. 'node:' .. node .. ':users')\n" \
	"  redis.call('ZREM', P .. 'nodes', node)\n" \
	"  redis.call('PEXPIRE', P .. 'node:' .. node .. ':gen', " RSCRIPT_GEN_KEEP_MS ")\n" \
	"end\n"

/* A room's record is its seq, hist and epoch keys; they always get their
 * expiry together, so that they go at the same instant and a new life of
 * the room never meets the old one's history. A script that uses a room
 * refreshes the record, when due, to room_ttl + room_ttl/16 (ms; 0 =
 * never expires, nothing is done). It is due when one of the keys was
 * just made; for a join or a history when the seq key has less than
 * room_ttl left; for a publish when the node says so, which it does at
 * most every room_ttl/32 per room (redis_ops.c, cluster_ops.c). So a room expires between
 * room_ttl and room_ttl + room_ttl/16 after its last use, and most messages
 * cost no Redis command more than before rooms expired.
 *
 * The publish scripts spell this out inline: helper closures would be
 * built on every call, and they run for every message (Redis's share of
 * a message is what S2 of confab-bench measures). */
#define RSCRIPT_RECORD_DUE(kseq, khist, kepoch, ttl) \
	"  if due and " ttl " > 0 then\n" \
	"    local t = " ttl " * 1000 + math.floor(" ttl " * 1000 / 16)\n" \
	"    redis.call('PEXPIRE', " kseq ", t)\n" \
	"    redis.call('PEXPIRE', " khist ", t)\n" \
	"    redis.call('PEXPIRE', " kepoch ", t)\n" \
	"  end\n"

/* The other scripts' helpers. epoch(): the room's epoch, and whether it
 * was just made (`fresh`, random text from the node, when the room had
 * none). refresh(): as above, when `due` or the seq key is aging. */
#define RSCRIPT_RECORD \
	"local function epoch(kepoch, fresh)\n" \
	"  local e = redis.call('GET', kepoch)\n" \
	"  if e then return e, false end\n" \
	"  redis.call('SET', kepoch, fresh)\n" \
	"  return fresh, true\n" \
	"end\n" \
	"local function refresh(kseq, khist, kepoch, ttl, due)\n" \
	"  due = due or (ttl > 0 and redis.call('PTTL', kseq) < ttl * 1000)\n" \
	RSCRIPT_RECORD_DUE("kseq", "khist", "kepoch", "ttl") \
	"end\n"

#endif /* CONFAB_RSCRIPT_H */
