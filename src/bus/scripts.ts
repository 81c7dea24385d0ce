/**
 * Lua scripts of the Redis bus. Each runs atomically inside Redis, and the ones that touch dead
 * letters copy entries there, byte for byte, so a 100 MB or non-UTF-8 entry never travels to the
 * service and back (and is never re-encoded on the way).
 */

/**
 * Seed 000 engines LPUSH onto a list and the seed RPOPs it: a message popped by a process that
 * dies before committing is gone. This pops and appends to the stream in one atomic step, so
 * every list item becomes exactly one stream entry.
 */
export const MOVE_LIST = `
local moved = 0
for i = 1, tonumber(ARGV[1]) do
  local item = redis.call('RPOP', KEYS[1])
  if not item then break end
  redis.call('XADD', KEYS[2], '*', 'payload', item, 'via', 'list')
  moved = moved + 1
end
return moved`;

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
 * KEYS: dead stream, default stream. ARGV: letter id.
 * Appends the letter's original fields to the stream it came from and removes the letter, in
 * one step. Returns the new entry id, or false when there is no such letter.
 */
export const REPLAY_DEAD = `
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if not e[1] then return false end
local f = e[1][2]
local stream = KEYS[2]
local fields = {}
for i = 1, #f, 2 do
  local name = f[i]
  if name == 'stream' then stream = f[i + 1]
  elseif string.sub(name, 1, 2) == 'f:' then
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
local id = redis.call('XADD', stream, '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return id`;

/**
 * KEYS: stream, dead stream. ARGV: oldest dead-letter id to keep.
 * Removes the stream's entries that every consumer group has acknowledged: those before the
 * oldest entry still pending in any group, or not yet delivered to it. A stream no group reads
 * yet is left alone (its entries wait for the first worker). Returns {stream removed, dead removed}.
 */
export const TRIM = `
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local removed = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local keep = nil
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    local oldest = info['last-delivered-id']
    if tonumber(info['pending']) > 0 then
      oldest = redis.call('XPENDING', KEYS[1], info['name'])[2]
    end
    if keep == nil or before(oldest, keep) then keep = oldest end
  end
  if keep then removed = redis.call('XTRIM', KEYS[1], 'MINID', '~', keep) end
end
local dead = 0
-- Dead letters are few: trimmed exactly, so none outlives the retention.
if redis.call('EXISTS', KEYS[2]) == 1 then dead = redis.call('XTRIM', KEYS[2], 'MINID', ARGV[1]) end
return {removed, dead}`;
