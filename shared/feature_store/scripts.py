"""The feature store's Lua scripts (the write side of :mod:`shared.feature_store.layout`, whose field names they
use). Each call touches the keys of ONE slot group (``KEYS[1]`` is the group's fence, the other keys are named
from the prefix in ``ARGV[2]`` and carry the same hash tag), so the scripts run on Redis Cluster too. Each runs
atomically: a group's cells and the offsets they cover always move together (offsets stored outside Kafka, in
the same transaction as the effects). Every script first checks the fence: an epoch older than the group's is
refused ("epoch"), a newer one raises the fence.

APPLY (one partition chunk's records of the group, in offset order). ARGV: epoch, group prefix, partition key,
floor, first and last offset of the WHOLE chunk (all groups), their fingerprints, and the rows as one flat JSON
array, six values a row: offset, timestamp_ms, shop, product, month index, qty (an empty shop marks a rejected
record).
  ``prev`` = max(stored offset, floor - 1). Rows at or below ``prev`` are duplicates. When the chunk starts or ends
  at the stored record but with another fingerprint, the log is not the one we applied (topic re-created): stop
  with "changed". A chunk starting above ``prev + 1`` is a gap (the store is behind the consumer): "gap".
  Otherwise each retailer's hash is read once, its cells replaced (a changed value raises the revision, marks the
  retailer dirty; a new month counts in ``mr``), written once, and the group's offset set to the chunk's last.
  Returns {status, applied, duplicates, expected next offset, group's latest month index or -1, dirty shop...}.

WRITE (features). ARGV: epoch, group prefix, then per shop: shop, revision, pair count, field/value pairs. The
pairs replace the stored features only when the stored ``w`` is lower; the shop leaves the dirty set only when no
newer change arrived meanwhile. Returns the number of retailers written (-1: fenced out).

FORGET: drop a partition's offset from the group if it still is ``ARGV[3]`` (the log was re-created).
FENCE: raise the fence to ``ARGV[1]`` (a wipe).
"""

FENCE_CHECK = r"""
local epoch = tonumber(ARGV[1])
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence > epoch then return {'epoch'} end
if fence < epoch then redis.call('SET', KEYS[1], ARGV[1]) end
"""

_LOAD = r"""
local function load_shop(P, shop)
  local key = P .. 'r:' .. shop
  local s = {key = key, pidx = {}, plist = {}, months = {}, existed = {}, mchanged = {}, pchanged = {},
             changes = 0, new = redis.call('EXISTS', key) == 0}
  local meta = redis.call('HMGET', key, 'n', 't')
  s.n = tonumber(meta[1] or '0')
  s.ts = tonumber(meta[2] or '-1')
  if s.n > 0 then
    local fields = {}
    for c = 0, math.floor((s.n - 1) / 8) do fields[#fields + 1] = 'p' .. c end
    local chunks = redis.call('HMGET', key, unpack(fields))
    for c, blob in ipairs(chunks) do
      local ids = {cmsgpack.unpack(blob)}
      for j, id in ipairs(ids) do
        local i = (c - 1) * 8 + j - 1
        s.pidx[id] = i
        s.plist[i] = id
      end
    end
  end
  return s
end

local function month_cells(s, k)
  local cells = s.months[k]
  if cells then return cells end
  cells = {}
  local blob = redis.call('HGET', s.key, string.format('%d', k))
  if blob then
    local flat = {cmsgpack.unpack(blob)}
    for j = 1, #flat, 2 do cells[flat[j]] = flat[j + 1] end
    s.existed[k] = true
  end
  s.months[k] = cells
  return cells
end

local function pack_cells(cells)
  local idx = {}
  for i, _ in pairs(cells) do idx[#idx + 1] = i end
  table.sort(idx)
  local flat = {}
  for _, i in ipairs(idx) do flat[#flat + 1] = i; flat[#flat + 1] = cells[i] end
  return cmsgpack.pack(unpack(flat))
end
"""

_SAVE = r"""
local function save_shop(P, s)
  local args = {}
  for k, _ in pairs(s.mchanged) do
    args[#args + 1] = string.format('%d', k)
    args[#args + 1] = pack_cells(s.months[k])
    if not s.existed[k] then redis.call('HINCRBY', P .. 'mr', string.format('%d', k), 1) end
  end
  for c, _ in pairs(s.pchanged) do
    local ids = {}
    for i = c * 8, math.min(c * 8 + 7, s.n - 1) do ids[#ids + 1] = s.plist[i] end
    args[#args + 1] = 'p' .. c
    args[#args + 1] = cmsgpack.pack(unpack(ids))
  end
  args[#args + 1] = 'n'; args[#args + 1] = string.format('%d', s.n)
  args[#args + 1] = 't'; args[#args + 1] = string.format('%d', s.ts)
  redis.call('HSET', s.key, unpack(args))
  redis.call('HINCRBY', s.key, 'r', s.changes)
  if s.new then redis.call('HINCRBY', P .. 'g', 'n', 1) end
  redis.call('SADD', P .. 'd', string.sub(s.key, #P + 3))
end
"""

APPLY = FENCE_CHECK + _LOAD + _SAVE + r"""
local P, pkey = ARGV[2], ARGV[3]
local okey = P .. 'o'
local prev = tonumber(ARGV[4]) - 1
local stored_fp = nil
local stored = redis.call('HGET', okey, pkey)
if stored then
  local so, sf = string.match(stored, '^(%-?%d+):(.*)$')
  so = tonumber(so)
  if so >= prev then prev = so; stored_fp = sf end
end
local first, last = tonumber(ARGV[5]), tonumber(ARGV[6])
local function differs(off, fp)
  return off == prev and stored_fp and stored_fp ~= '' and fp ~= '' and fp ~= stored_fp
end
if differs(first, ARGV[7]) or (first < prev and differs(last, ARGV[8])) then
  return {'changed', 0, 0, string.format('%d', prev + 1), -1}
end
if first > prev + 1 then return {'gap', 0, 0, string.format('%d', prev + 1), -1} end
local rows = cjson.decode(ARGV[9])
local applied, dups, maxk = 0, 0, -1
local shops, order = {}, {}
for i = 1, #rows, 6 do
  if rows[i] <= prev then
    dups = dups + 1
  else
    applied = applied + 1
    local shop = rows[i + 2]
    if shop ~= '' then
      local s = shops[shop]
      if not s then s = load_shop(P, shop); shops[shop] = s; order[#order + 1] = shop end
      local product, k, qty = rows[i + 3], rows[i + 4], rows[i + 5]
      local idx = s.pidx[product]
      if not idx then
        idx = s.n; s.n = s.n + 1; s.pidx[product] = idx; s.plist[idx] = product
        s.pchanged[math.floor(idx / 8)] = true
      end
      local cells = month_cells(s, k)
      if cells[idx] ~= qty then
        cells[idx] = qty; s.mchanged[k] = true; s.changes = s.changes + 1
        if rows[i + 1] > s.ts then s.ts = rows[i + 1] end
      end
      if k > maxk then maxk = k end
    end
  end
end
local out = {'ok', applied, dups, string.format('%d', math.max(prev, last) + 1), -1}
for _, shop in ipairs(order) do
  local s = shops[shop]
  if s.changes > 0 then save_shop(P, s); out[#out + 1] = shop end
end
if last > prev then redis.call('HSET', okey, pkey, string.format('%d', last) .. ':' .. ARGV[8]) end
if maxk >= 0 then
  local latest = tonumber(redis.call('HGET', P .. 'g', 'l') or '-1')
  if maxk > latest then redis.call('HSET', P .. 'g', 'l', string.format('%d', maxk)); out[5] = maxk end
end
return out
"""

WRITE = r"""
local epoch = tonumber(ARGV[1])
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence > epoch then return -1 end
if fence < epoch then redis.call('SET', KEYS[1], ARGV[1]) end
local P = ARGV[2]
local i, written = 3, 0
while i <= #ARGV do
  local shop, rev, npairs = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local key = P .. 'r:' .. shop
  local meta = redis.call('HMGET', key, 'w', 'r')
  if tonumber(meta[1] or '-1') < rev then
    if redis.call('EXISTS', key) == 0 then redis.call('HINCRBY', P .. 'g', 'n', 1) end
    local args = {'w', ARGV[i + 1]}
    for j = i + 3, i + 2 + 2 * npairs do args[#args + 1] = ARGV[j] end
    redis.call('HSET', key, unpack(args))
    written = written + 1
  end
  if tonumber(meta[2] or '0') <= rev then redis.call('SREM', P .. 'd', shop) end
  i = i + 3 + 2 * npairs
end
return written
"""

FORGET = FENCE_CHECK + r"""
local okey = ARGV[2] .. 'o'
if redis.call('HGET', okey, ARGV[3]) == ARGV[4] then redis.call('HDEL', okey, ARGV[3]); return 1 end
return 0
"""

FENCE = FENCE_CHECK + "return {'ok'}\n"
