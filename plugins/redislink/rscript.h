/* The Lua that both Redis backplanes' scripts share, as string literals to
 * splice into them: the prelude of presence helpers (with the command that
 * publishes a member event as the parameter: PUBLISH to the room's channel,
 * or SPUBLISH to the partition's), the room record's expiry helpers, and
 * the scripts (or their halves) that are the same in both. The keys are
 * plugins/redis/redis_scripts.c's (docs/backplane-redis.md).
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
 * grown RSCRIPT_HIST_SLACK past it: an LTRIM on every message was a tenth of
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
 * most every room_ttl/32 per room (redis_ops.c, cluster_ops.c). So a
 * room expires between room_ttl and room_ttl + room_ttl/16 after its last
 * use, and most messages cost no Redis command more than before rooms
 * expired.
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

/* One message of the publish scripts, written once for both: with `seq`
 * INCR'd and `due` set when the node asks for a refresh. Only the first
 * message of a room's life (seq 1) reads the epoch (or makes it) and
 * carries it: the nodes, which receive a room's messages in seq order,
 * remember it from there and from the joins' epoch script, and label the
 * messages that follow with it (redis_ops.c, cluster_gap.c). A GET of
 * the epoch for every message was most of what epochs cost Redis per
 * message. Then builds
 * `msg`, keeps it in history and refreshes the record when due (or when
 * a key was made). */
#define RSCRIPT_PUBLISH_ONE(kseq, khist, kepoch, head_a, head_b, body) \
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

/* The direct script's start (ARGV[3..9]: user, message, presence_ttl in
 * ms, then the idem key, window, id, ts): a repeat returns at once; then
 * `alive` (the oldest heartbeat of a live node), `reached` = 0, and a
 * loop over the nodes that have the user, with `seen`, the node's last
 * heartbeat (nil when forgotten). The backplane's body follows and closes
 * the loop ("end"). */
#define RSCRIPT_DIRECT_HEAD \
	RSCRIPT_IDEM_REPEAT("6") \
	"local alive = now_ms() - tonumber(ARGV[5])\n" \
	"local reached = 0\n" \
	"for _, node in ipairs(redis.call('SMEMBERS', P .. 'user:' .. ARGV[3])) do\n" \
	"  local seen = redis.call('ZSCORE', P .. 'nodes', node)\n"

/* The direct script's end: `reached` nodes took the message; when some
 * did, its idempotency key (ARGV[6..9]: key, window, id, ts) is set to
 * "0 ID TS". */
#define RSCRIPT_DIRECT_DONE \
	"if ik and reached > 0 then\n" \
	"  redis.call('SET', ik, '0 ' .. ARGV[8] .. ' ' .. ARGV[9], 'EX', ARGV[7])\n" \
	"end\n" \
	"return reached\n"

/* An idempotent send's first step: `ik`, the idem key's name from
 * ARGV[n] ("" for none); when it exists the call is a repeat and returns
 * its value ("SEQ ID TS") before doing anything. */
#define RSCRIPT_IDEM_REPEAT(n) \
	"local ik = ARGV[" n "]\n" \
	"if ik == '' then ik = nil end\n" \
	"if ik then\n" \
	"  local first = redis.call('GET', ik)\n" \
	"  if first then return first end\n" \
	"end\n"

/* KEYS: seq, hist, epoch. ARGV[3..4]: room_ttl, fresh epoch. A join's:
 * returns the room's epoch, creating the record when there is none. */
#define RSCRIPT_EPOCH RSCRIPT_RECORD \
	"local e, made = epoch(KEYS[3], ARGV[4])\n" \
	"refresh(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[3]), made)\n" \
	"return e\n"

/* ARGV[3..4]: node, generation: a script that writes the node's record
 * returns 0, doing nothing, when the generation is not the current one. */
#define RSCRIPT_IF_CURRENT "if not current(ARGV[3], ARGV[4]) then return 0 end\n"

/* One presence change, with the node and its generation (then 1), each
 * after the backplane's prelude. ARGV[5..6]: room, user (join, leave);
 * ARGV[5]: user (online, offline). Goodbye: a clean shutdown, the node's
 * members leave now rather than after presence_ttl. */
#define RSCRIPT_JOIN(prelude) \
	prelude RSCRIPT_IF_CURRENT "join(ARGV[3], ARGV[5], ARGV[6])\nreturn 1\n"
#define RSCRIPT_LEAVE(prelude) \
	prelude RSCRIPT_IF_CURRENT "leave(ARGV[3], ARGV[5], ARGV[6])\nreturn 1\n"
#define RSCRIPT_ONLINE(prelude) prelude RSCRIPT_IF_CURRENT "online(ARGV[3], ARGV[5])\nreturn 1\n"
#define RSCRIPT_OFFLINE(prelude) prelude RSCRIPT_IF_CURRENT "offline(ARGV[3], ARGV[5])\nreturn 1\n"
#define RSCRIPT_GOODBYE(prelude) prelude RSCRIPT_IF_CURRENT "forget(ARGV[3])\nreturn 1\n"

/* ARGV[3..5]: node, generation, presence_ttl in ms. Records this node's
 * heartbeat and forgets every other node silent for longer than the ttl
 * (its members leave, with events). Returns {1 if this node was not
 * registered (it had been forgotten itself, or its generation is not the
 * current one: then nothing of it is recorded), forgotten nodes...}. */
#define RSCRIPT_HEARTBEAT(prelude) prelude \
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
 * that generation as a string (the node then tries again above it). */
#define RSCRIPT_RECONCILE(prelude) prelude \
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

/* The history script's two halves, around what each backplane decides
 * `last` (the last seq served) to be. KEYS: seq, hist, epoch. ARGV[3..9]:
 * has_since ("1"/"0"), since, limit, history_size, the epoch the client
 * knows ("" for none), room_ttl, fresh epoch. The head gives e (the
 * room's epoch), other (the client knows another one: it gets everything
 * kept, truncated), real (the room's seq), list_first and first_kept
 * (the seqs of the list's first message and of the first one served),
 * and last (the last seq served: real, unless the backplane lowers it).
 * The rest returns {truncated (1/0), epoch, messages oldest first...}:
 * the embedded backplane's answer. */
#define RSCRIPT_HISTORY_HEAD RSCRIPT_RECORD \
	"local e, made = epoch(KEYS[3], ARGV[9])\n" \
	"refresh(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[8]), made)\n" \
	"local other = ARGV[7] ~= '' and ARGV[7] ~= e\n" \
	"local real = tonumber(redis.call('GET', KEYS[1]) or '0')\n" \
	"local stored = redis.call('LLEN', KEYS[2])\n" \
	"local list_first = real - stored + 1\n" \
	"local kept = math.min(stored, tonumber(ARGV[6]))\n" \
	"local first_kept = real - kept + 1\n" \
	"local last = real\n"

#define RSCRIPT_HISTORY_SERVE \
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

/* The entries both backplanes' script tables share, for enums whose
 * names are P followed by PUBLISH, DIRECT, JOIN, ...: the texts of the
 * presence scripts (after `prelude`) and of the epoch script, the
 * backplane's own texts of the scripts both have (`publish`, `direct`,
 * `history`, `publish_batch`), and the names (for logs) of every script
 * both have. */
#define RSCRIPT_TEXTS(P, prelude, publish, direct, history, publish_batch) \
	[P##PUBLISH] = publish, \
	[P##DIRECT] = direct, \
	[P##JOIN] = RSCRIPT_JOIN(prelude), \
	[P##LEAVE] = RSCRIPT_LEAVE(prelude), \
	[P##ONLINE] = RSCRIPT_ONLINE(prelude), \
	[P##OFFLINE] = RSCRIPT_OFFLINE(prelude), \
	[P##HEARTBEAT] = RSCRIPT_HEARTBEAT(prelude), \
	[P##RECONCILE] = RSCRIPT_RECONCILE(prelude), \
	[P##GOODBYE] = RSCRIPT_GOODBYE(prelude), \
	[P##EPOCH] = RSCRIPT_EPOCH, \
	[P##HISTORY] = history, \
	[P##PUBLISH_BATCH] = publish_batch
#define RSCRIPT_NAMES(P) \
	[P##PUBLISH] = "publish", \
	[P##DIRECT] = "direct", \
	[P##JOIN] = "join", \
	[P##LEAVE] = "leave", \
	[P##ONLINE] = "online", \
	[P##OFFLINE] = "offline", \
	[P##HEARTBEAT] = "heartbeat", \
	[P##RECONCILE] = "reconcile", \
	[P##HISTORY] = "history", \
	[P##GOODBYE] = "goodbye", \
	[P##EPOCH] = "epoch", \
	[P##PUBLISH_BATCH] = "publish_batch"

#endif /* CONFAB_RSCRIPT_H */
