/**
 * Lua scripts of the Redis bus. Each runs atomically inside Redis, and the ones that touch dead
 * letters copy entries there, byte for byte, so a 100 MB or non-UTF-8 entry never travels to the
 * service and back (and is never re-encoded on the way).
 */

/**
 * Moves the seed's list and the entry stream into the shard streams, hashing as it moves (the
 * rule of routing.ts, which a property test checks against this script).
 *
 * Seed 000 engines LPUSH onto a list and the seed RPOPs it: a message popped by a process that
 * dies before committing is gone. Here each item is popped and appended to its shard in one
 * atomic step, so every list item becomes exactly one shard entry; entries of the entry stream
 * are copied whole (every field, byte for byte) and deleted in the same step. Several callers
 * at once are fine: each call takes the oldest items, and calls run one after another.
 *
 * KEYS: list, entry stream, shard 0 … shard N-1. ARGV: max items, max payload bytes (larger
 * ones are not parsed: they go to a shard, where they are dead-lettered), the routing table as
 * JSON ({type: [prefix, field, …]}). Returns how many items were moved, and the id of an entry
 * with too many fields to copy here, when it stopped at one.
 */
export const ROUTE = `
local shards = #KEYS - 2
local max, maxBytes = tonumber(ARGV[1]), tonumber(ARGV[2])
local rules = cjson.decode(ARGV[3])
local spread = tonumber(redis.call('TIME')[2])
local function text(v)
  if type(v) == 'string' then return v end
  if type(v) == 'number' and v == math.floor(v) and math.abs(v) < 9007199254740992 then return string.format('%d', v) end
  return ''
end
local function fnv(s)
  local h = 2166136261
  for i = 1, #s do
    h = bit.bxor(h, string.byte(s, i)) % 4294967296
    h = ((bit.lshift(h, 24) % 4294967296) + (bit.lshift(h, 8) % 4294967296) + h * 147) % 4294967296
  end
  return h
end
local function shard(payload)
  spread = spread + 1
  local any = 3 + spread % shards
  if not payload or #payload > maxBytes then return any end
  local ok, m = pcall(cjson.decode, payload)
  if not ok or type(m) ~= 'table' or type(m.type) ~= 'string' or type(m.data) ~= 'table' then return any end
  local rule = rules[m.type]
  if not rule then return any end
  local parts = {rule[1]}
  for i = 2, #rule do parts[i] = text(m.data[rule[i]]) end
  if parts[2] == '' then return any end
  return 3 + fnv(table.concat(parts, ':')) % shards
end
local moved = 0
while moved < max do
  local item = redis.call('RPOP', KEYS[1])
  if not item then break end
  redis.call('XADD', KEYS[shard(item)], '*', 'payload', item, 'via', 'list')
  moved = moved + 1
end
if moved < max then
  local entries = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', max - moved)
  for _, e in ipairs(entries) do
    local f, payload = e[2], nil
    -- More fields than one Lua call can pass on: the caller moves this one itself.
    if #f > 7000 then return {moved, e[1]} end
    for i = 1, #f, 2 do
      if f[i] == 'payload' then payload = f[i + 1]; break end
    end
    redis.call('XADD', KEYS[shard(payload)], '*', unpack(f))
    redis.call('XDEL', KEYS[2], e[1])
    moved = moved + 1
  end
end
return {moved, false}`;

/**
 * KEYS: dead stream, seen marker, source stream. ARGV: source id, reason, attempts, failed_at,
 * marker TTL (s), and optionally the worker's copy of the payload (used only if the source entry
 * is gone). Writes the letter once per source entry: the original fields are kept under
 * "f:<name>". The marker is set only after the letter is written, so a failure in between leaves
 * the entry to be dead-lettered again, never lost. An entry with more fields than one Lua call
 * can pass on returns 'TOO_MANY_FIELDS' (the caller copies it itself).
 */
export const DEAD_LETTER = `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local fields = {'source', ARGV[1], 'stream', KEYS[3], 'reason', ARGV[2], 'attempts', ARGV[3], 'failed_at', ARGV[4]}
local found = redis.call('XRANGE', KEYS[3], ARGV[1], ARGV[1])
if found[1] then
  local f = found[1][2]
  for i = 1, #f, 2 do
    fields[#fields + 1] = 'f:' .. f[i]
    fields[#fields + 1] = f[i + 1]
  end
elseif ARGV[6] then
  fields[#fields + 1] = 'f:payload'
  fields[#fields + 1] = ARGV[6]
else
  fields[#fields + 1] = 'lost'
  fields[#fields + 1] = '1'
end
if #fields > 7000 then return 'TOO_MANY_FIELDS' end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('SET', KEYS[2], '1', 'EX', ARGV[5])
return id`;

/**
 * KEYS: dead stream. ARGV: start ('-' or '(<id>'), count, preview bytes.
 * Returns, per letter: id, its metadata pairs, and per original field: name, size, preview.
 * Letters written before fields were kept under "f:" have a plain "payload" field; it counts as one.
 */
export const LIST_DEAD = `
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local n = tonumber(ARGV[3])
local out = {}
for _, e in ipairs(entries) do
  local meta, originals = {}, {}
  local f = e[2]
  for i = 1, #f, 2 do
    local name, value = f[i], f[i + 1]
    if string.sub(name, 1, 2) == 'f:' or name == 'payload' then
      if name ~= 'payload' then name = string.sub(name, 3) end
      originals[#originals + 1] = name
      originals[#originals + 1] = tostring(#value)
      originals[#originals + 1] = string.sub(value, 1, n)
    else
      meta[#meta + 1] = name
      meta[#meta + 1] = value
    end
  end
  out[#out + 1] = {e[1], meta, originals}
end
return out`;

/** KEYS: dead stream. ARGV: start, count. Ids only, so that paging never moves payloads. */
export const DEAD_IDS = `
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local ids = {}
for _, e in ipairs(entries) do ids[#ids + 1] = e[1] end
return ids`;

/**
 * KEYS: dead stream, its shard's stream. ARGV: letter id.
 * Appends the letter's original fields to its shard's stream and removes the letter, in one
 * step. Returns the new entry id, or false when there is no such letter. The letter's "stream"
 * field is not followed: a script writes only keys it is given (a cluster routes by them).
 */
export const REPLAY_DEAD = `
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if not e[1] then return false end
local f = e[1][2]
local fields = {}
for i = 1, #f, 2 do
  local name = f[i]
  if string.sub(name, 1, 2) == 'f:' then
    fields[#fields + 1] = string.sub(name, 3)
    fields[#fields + 1] = f[i + 1]
  elseif name == 'payload' then
    fields[#fields + 1] = 'payload'
    fields[#fields + 1] = f[i + 1]
  end
end
if #fields == 0 then
  return redis.error_reply('dead letter ' .. ARGV[1] .. ' kept no fields of its entry (it was gone before it could be copied)')
end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return id`;




/**
 * KEYS: offset key, shard stream. ARGV: offset, the id just after it.
 * Records the last committed offset (never moving it back) and removes the shard's entries up to
 * it: what is committed is in PostgreSQL, and its dead letters are written. The trim runs even
 * when the offset is not new: entries up to it that turn up again (a Redis restored from an older
 * snapshot) would otherwise wait there forever, never read.
 */
export const COMMITTED = `
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local current = redis.call('GET', KEYS[1])
if not current or before(current, ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('XTRIM', KEYS[2], 'MINID', ARGV[2])`;

/**
 * KEYS: shard stream. ARGV: the id new entries must come after (just after the owner's read
 * position), and "check" to report the stream's last id. Entry ids come from the server's clock
 * and never go back within a stream; but a stream made again (a Redis that came back empty, a
 * deleted key) on a clock behind the owner's position would give new entries ids the owner never
 * reads. So a missing stream is made, empty, with that id as its last: entries added afterwards
 * come after it whatever the clock says. Returns "made"; otherwise, with "check", the stream's
 * last id (the owner compares it with the offset); otherwise false.
 */
export const ANCHOR = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XADD', KEYS[1], ARGV[1], 'anchor', '1')
  redis.call('XDEL', KEYS[1], ARGV[1])
  return 'made'
end
if ARGV[2] ~= 'check' then return false end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return info[i + 1] end
end
return false`;

/**
 * KEYS: lease. ARGV: worker, ttl (ms). Takes the lease when it is free, extends it when this
 * worker holds it; returns 1 when held, 0 when another worker holds it.
 */
export const LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** KEYS: lease. ARGV: worker. Deletes the lease if this worker holds it. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * KEYS: workers (sorted set, score = expiry in the server's ms). ARGV: worker, ttl (ms).
 * Renews the worker's membership, forgets expired ones, returns the live workers. The server's
 * clock is the only clock, so workers on hosts with skewed clocks agree.
 */
export const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[2] ~= '0' then redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], 86400000)
return redis.call('ZRANGE', KEYS[1], 0, -1)`;

/**
 * KEYS: starts (a hash). ARGV: offset. Counts the owners that started on the shard at this
 * offset; the count restarts at 1 when the offset differs from the last one counted.
 */
export const COUNT_START = `
local n = 1
if redis.call('HGET', KEYS[1], 'offset') == ARGV[1] then n = redis.call('HINCRBY', KEYS[1], 'count', 1)
else redis.call('HSET', KEYS[1], 'offset', ARGV[1], 'count', 1) end
redis.call('PEXPIRE', KEYS[1], 86400000)
return n`;
