package redisbroker

import "github.com/redis/rueidis"

// The broker's state changes are Lua scripts, each atomic on the server.
// Every script that records something for this node first makes sure the
// node is in the node set (ZADD NX with its deadline) and says whether it
// had to add it: then the node's registration was lost (Redis restarted
// empty, or survivors swept it) and it re-registers everything it holds.
// What a node records is also listed in its registry hash, field -> the
// keys and pre-encoded messages the cleanup script needs, as segments, so
// that cleanup needs no knowledge of the key layout.
//
// Every script that writes this node's state (its counts, users, presence
// connections, registration) first checks the node id's claim (see
// claim.go): held by another process's token, the script changes nothing
// and answers the error reply luaTaken names, so that a process another
// one has replaced cannot write over the new one's state, even between
// its heartbeats. Held by nobody (expired, or lost with everything else
// in a Redis restart), the script takes it again for this process, as it
// puts the node back in the node set. The check is one GET.

// luaSegs is the Lua twin of splitSegs.
const luaSegs = `
local function segs(s)
  local out, i = {}, 1
  while i <= #s do
    local c = string.find(s, ':', i, true)
    local n = tonumber(string.sub(s, i, c - 1))
    out[#out + 1] = string.sub(s, c + 1, c + n)
    i = c + n + 1
  end
  return out
end
`

// luaClaim defines claimed(key, token, ttl ms): false when another
// process's token holds the claim; otherwise true, the claim taken for
// token if nobody held it. And taken, the scripts' error reply then.
const luaClaim = `
local function claimed(key, token, ttl)
  local held = redis.call('GET', key)
  if held == token then return true end
  if held then return false end
  redis.call('SET', key, token, 'PX', ttl)
  return true
end
local taken = '` + takenReply + ` another process holds this node id'
`

// takenReply is the code of the error reply of a script refused because
// another process holds the node id's claim.
const takenReply = "NODETAKEN"

// takeClaim: KEYS claim; ARGV token, ttl ms. Takes or refreshes the claim
// for token; 0 when another token holds it.
var takeClaim = rueidis.NewLuaScript(luaClaim + `
if not claimed(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// heartbeat: KEYS nodes, claim; ARGV deadline, node, token, ttl ms.
// Refreshes the claim (or takes it again, if it was lost) and the node's
// deadline; returns 1 when the node had to be added to the node set.
var heartbeat = rueidis.NewLuaScript(luaClaim + `
if not claimed(KEYS[2], ARGV[3], ARGV[4]) then return redis.error_reply(taken) end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
`)

// publishCached: KEYS cache; ARGV wire, ttl ms, pub/sub channel.
var publishCached = rueidis.NewLuaScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('PUBLISH', ARGV[3], ARGV[1])
`)

// setCount: KEYS occ, apps, registry, nodes, pending vacancy, epoch
// counter, swept marker, claim; ARGV node, n, channel, registry field,
// registry value, deadline, track ('1': report transitions), hold ms,
// token, claim ttl ms. Absolute values:
// applying it twice changes nothing. Returns {added, transition (0 none,
// 1 occupied, 2 vacated), epoch, cluster total after (-1: unchanged)}.
// The cluster-wide 0->n and n->0 are decided here, atomically with the
// count, so that one node reports each; a 0->n while a vacancy is pending
// cancels it instead (a reload within the delay sends nothing). A count
// the node sets to 0 of which Redis holds no record, not even the node's
// registration of it, had been written and was lost (Redis restarted
// empty): with no subscriber left anywhere, the channel is vacated all
// the same. Not when the node was swept (the marker): the cleanup removed
// the count, and reported the vacancy if there was one.
var setCount = rueidis.NewLuaScript(luaClaim + `
if not claimed(KEYS[8], ARGV[9], ARGV[10]) then return redis.error_reply(taken) end
local added = redis.call('ZADD', KEYS[4], 'NX', ARGV[6], ARGV[1])
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local n = tonumber(ARGV[2])
local lost = false
if n > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], n)
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  lost = redis.call('HDEL', KEYS[3], ARGV[4]) == 0 and redis.call('EXISTS', KEYS[7]) == 0
end
local ev, epoch, total = 0, 0, -1
if n == 0 and old == 0 and lost and ARGV[7] == '1' and
    tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '0') <= 0 then
  epoch = redis.call('INCR', KEYS[6])
  redis.call('SET', KEYS[5], epoch, 'PX', ARGV[8])
  ev = 2
elseif n ~= old then
  total = redis.call('HINCRBY', KEYS[2], ARGV[3], n - old)
  if total <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[3])
  end
  if ARGV[7] == '1' then
    local before = total - (n - old)
    if before <= 0 and total > 0 then
      if redis.call('DEL', KEYS[5]) == 0 then ev = 1 end
    elseif before > 0 and total <= 0 then
      epoch = redis.call('INCR', KEYS[6])
      redis.call('SET', KEYS[5], epoch, 'PX', ARGV[8])
      ev = 2
    end
  end
  if total < 0 then total = 0 end
end
return {added, ev, epoch, total}
`)

// setUser: KEYS user, registry, nodes, swept marker, claim; ARGV node, n,
// registry field, registry value, online message, offline message,
// control channel, deadline, token, claim ttl ms. The user's cluster-wide transitions are published here, so
// they happen once and in order. A user this node goes offline for whom
// Redis holds no record at all, not even this node's registration of
// them, was online here and its records were lost (Redis restarted
// empty): the user is offline for the cluster all the same, and said so.
// Not when the node was swept (the marker): the cleanup said so already.
var setUser = rueidis.NewLuaScript(luaClaim + `
if not claimed(KEYS[5], ARGV[9], ARGV[10]) then return redis.error_reply(taken) end
local added = redis.call('ZADD', KEYS[3], 'NX', ARGV[8], ARGV[1])
local before = redis.call('EXISTS', KEYS[1])
local lost = false
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  lost = redis.call('HDEL', KEYS[2], ARGV[3]) == 0 and redis.call('EXISTS', KEYS[4]) == 0
end
local after = redis.call('EXISTS', KEYS[1])
if before == 0 and after == 1 then
  redis.call('PUBLISH', ARGV[7], ARGV[5])
elseif after == 0 and (before == 1 or lost) then
  redis.call('PUBLISH', ARGV[7], ARGV[6])
end
return added
`)

// join: KEYS conns, counts, info, order, seq, registry, nodes, pending
// removal, claim; ARGV conn field, user, info, max members (0: none),
// registry field, registry value, node, deadline, track ('1': report
// transitions), token, claim ttl ms.
// Returns {first (1, 0, or -1 for the limit), added, report (1: a new
// member to report; 0 when its first join cancelled a pending removal)}.
// Joining again with a connection already in is a no-op but for the info,
// which the latest join sets.
var join = rueidis.NewLuaScript(luaClaim + `
if not claimed(KEYS[9], ARGV[10], ARGV[11]) then return redis.error_reply(taken) end
local added = redis.call('ZADD', KEYS[7], 'NX', ARGV[8], ARGV[7])
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev then
  if prev ~= ARGV[2] then
    return redis.error_reply('connection already joined as another user')
  end
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  return {0, added, 0}
end
local c = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if c == 0 then
  local max = tonumber(ARGV[4])
  if max > 0 and redis.call('HLEN', KEYS[2]) >= max then
    return {-1, added, 0}
  end
  redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[5]), ARGV[2])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[6], ARGV[5], ARGV[6])
if c ~= 0 then return {0, added, 0} end
local report = 0
if ARGV[9] == '1' and redis.call('DEL', KEYS[8]) == 0 then report = 1 end
return {1, added, report}
`)

// leave: KEYS conns, counts, info, order, seq, registry, pending removal,
// epoch counter, claim; ARGV conn field, user, registry field, track ('1':
// report transitions), hold ms, token, claim ttl ms, and optionally the
// removed message and the pub/sub channel to publish it on when the user
// loses its last connection, before anything is written: the removal is
// announced if and only if it is made. A leave checks the claim like a
// join: the records it removes are the node id's, and once another
// process holds the id they are that process's (a socket id may repeat),
// as are the removals a leave announces and makes pending. Returns {last (1 when the user lost its last
// connection, -1 when the connection is not recorded at all), epoch of the
// pending removal (0: not tracked)}.
var leave = rueidis.NewLuaScript(luaClaim + `
if not claimed(KEYS[9], ARGV[6], ARGV[7]) then return redis.error_reply(taken) end
local user = redis.call('HGET', KEYS[1], ARGV[1])
if not user then return {-1, 0} end
if user ~= ARGV[2] then return {0, 0} end
if ARGV[8] and tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0') <= 1 then
  redis.call('PUBLISH', ARGV[9], ARGV[8])
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[3])
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) > 0 then return {0, 0} end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
if redis.call('HLEN', KEYS[2]) == 0 then redis.call('DEL', KEYS[5]) end
local epoch = 0
if ARGV[4] == '1' then
  epoch = redis.call('INCR', KEYS[8])
  redis.call('SET', KEYS[7], epoch, 'PX', ARGV[5])
end
return {1, epoch}
`)

// lostLeave: KEYS counts, pending removal, epoch counter, swept marker,
// claim; ARGV user, track ('1': report transitions), hold ms, token, claim
// ttl ms. For the leave of a
// connection Redis has no record of any more (see Broker.lostLeave): the
// user is gone unless a connection of theirs is still counted, and then,
// when tracked, the removal is recorded as pending, as the leave script
// records it. A connection of a node that was swept (the marker) was
// removed by the cleanup, which announced the removal if it was the
// user's last: it is not announced again.
// Returns {gone (1 or 0), epoch of the pending removal (0: not tracked)}.
var lostLeave = rueidis.NewLuaScript(luaClaim + `
if not claimed(KEYS[5], ARGV[4], ARGV[5]) then return redis.error_reply(taken) end
if redis.call('EXISTS', KEYS[4]) == 1 then return {0, 0} end
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') > 0 then return {0, 0} end
local epoch = 0
if ARGV[2] == '1' then
  epoch = redis.call('INCR', KEYS[3])
  redis.call('SET', KEYS[2], epoch, 'PX', ARGV[3])
end
return {1, epoch}
`)

// settle: KEYS pending transition; ARGV epoch. Claims it once: 1 when it
// was still pending with this epoch (nothing cancelled it, nobody claimed
// it), and it is gone afterwards.
var settle = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// members: KEYS order, info. Returns user, info, user, info... in join order.
// A plain script, not a read-only one: EVALSHA_RO and EVAL_RO are Redis 7.0's
// and the broker supports 6.2.
var members = rueidis.NewLuaScript(`
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
-- One HMGET per thousand members, not one HGET each: a join's cost stays
-- flat as its channel grows (unpack's argument count is bounded, hence
-- the chunks).
for lo = 1, #ids, 1000 do
  local hi = math.min(lo + 999, #ids)
  local infos = redis.call('HMGET', KEYS[2], unpack(ids, lo, hi))
  for i = lo, hi do
    out[#out + 1] = ids[i]
    out[#out + 1] = infos[i - lo + 1] or ''
  end
end
return out
`)

// cleanup removes everything a node registered: KEYS nodes, registry,
// swept marker, claim (self-removal only); ARGV node, now (ms; empty: the
// node removes itself), control channel, track ('1': record and return
// the transitions), hold ms, swept marker ttl ms, token (self-removal
// only).
// A node removing itself does so only while no other process holds its
// id's claim: a replaced process shutting down must not remove the
// registration of the process that replaced it.
// When now is given the node must have expired, and only the caller whose
// ZREM removed it goes on: with several survivors sweeping at once, one
// cleans up. It then sets the swept marker: the node may be alive behind a
// partition, and what it finds missing when it is back was removed and
// announced here, not lost (see setCount, setUser, lostLeave). Members who lost their last connection get KindMemberRemoved
// and users who went offline KindUserOffline, published here from the
// messages stored in the registry, so that a user coming back on another
// node at the same moment is announced after, not before, the removal.
// With track, the channels the node's removal vacated over the cluster and
// the members it removed are made pending, as a leave would, and returned
// to the caller, which reports them.
// Returns {node removed (0/1), counts, users offline, members removed,
// then kind ('v' or 'm'), app, channel, user, epoch for each transition}.
var cleanup = rueidis.NewLuaScript(luaSegs + luaClaim + `
if ARGV[2] == '' and KEYS[4] then
  local held = redis.call('GET', KEYS[4])
  if held and held ~= ARGV[7] then return redis.error_reply(taken) end
end
if ARGV[2] ~= '' then
  local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not s or tonumber(s) > tonumber(ARGV[2]) then return {0, 0, 0, 0} end
  if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return {0, 0, 0, 0} end
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[6])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
local track = ARGV[4] == '1'
local out = {}
local nc, nu, nm = 0, 0, 0
local reg = redis.call('HGETALL', KEYS[2])
for i = 1, #reg, 2 do
  local kind, v = string.sub(reg[i], 1, 1), segs(reg[i + 1])
  if kind == 'o' then
    -- occ, apps, channel, and since webhooks app, pending vacancy, epoch counter
    local old = tonumber(redis.call('HGET', v[1], ARGV[1]) or '0')
    redis.call('HDEL', v[1], ARGV[1])
    if old ~= 0 then
      local total = redis.call('HINCRBY', v[2], v[3], -old)
      if total <= 0 then
        redis.call('HDEL', v[2], v[3])
        if track and v[6] and total + old > 0 then
          local epoch = redis.call('INCR', v[6])
          redis.call('SET', v[5], epoch, 'PX', ARGV[5])
          for _, x in ipairs({'v', v[4], v[3], '', tostring(epoch)}) do out[#out + 1] = x end
        end
      end
    end
    nc = nc + 1
  elseif kind == 'u' then
    if redis.call('HDEL', v[1], ARGV[1]) == 1 and redis.call('EXISTS', v[1]) == 0 then
      redis.call('PUBLISH', ARGV[3], v[2])
      nu = nu + 1
    end
  elseif kind == 'p' then
    -- conns, counts, info, order, seq, field, user, removed message, channel,
    -- and since webhooks app, channel name, pending removal, epoch counter
    if redis.call('HGET', v[1], v[6]) == v[7] then
      redis.call('HDEL', v[1], v[6])
      if redis.call('HINCRBY', v[2], v[7], -1) <= 0 then
        redis.call('HDEL', v[2], v[7])
        redis.call('HDEL', v[3], v[7])
        redis.call('ZREM', v[4], v[7])
        if redis.call('HLEN', v[2]) == 0 then redis.call('DEL', v[5]) end
        redis.call('PUBLISH', v[9], v[8])
        nm = nm + 1
        if track and v[13] then
          local epoch = redis.call('INCR', v[13])
          redis.call('SET', v[12], epoch, 'PX', ARGV[5])
          for _, x in ipairs({'m', v[10], v[11], v[7], tostring(epoch)}) do out[#out + 1] = x end
        end
      end
    end
  end
end
redis.call('DEL', KEYS[2])
local res = {1, nc, nu, nm}
for _, x in ipairs(out) do res[#res + 1] = x end
return res
`)
