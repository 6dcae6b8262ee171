"""The two Redis scripts of the features service. Each runs atomically, so the state and the offsets it covers
always move together (offsets stored outside Kafka, in the same transaction as the effects).

APPLY (one partition's records, in offset order). ARGV: epoch, prefix, partition key, floor, and a JSON array of
records ``[offset, fingerprint, timestamp_ms, shop, product, period ("YYYY-MM"), qty (canonical float text)]``
(one argument: far cheaper to marshal than seven per record). An empty shop marks a rejected record: it only
advances the offset.
  ``prev`` = max(stored offset, floor - 1). A record at or below ``prev`` is a duplicate (skipped); when it IS the
  stored record but its fingerprint differs, the log is not the one we applied (topic re-created): stop with
  "changed". Fingerprints are computed for the first and last record of a call only (empty otherwise): the first
  is the one a resumed consumer sees at the stored offset, the last is the one stored.
  A record above ``prev + 1`` is a gap (the store is behind the consumer): stop with "gap". Otherwise
  replace the cell; if the value changed, the shop's revision grows by one and its month is re-aggregated from its
  cells (sum in product order, so the result does not depend on arrival order) and the shop is marked dirty.
  The latest month advances globally; every calendar month it passes goes to the months.closed outbox.
  Returns {status, applied, duplicates, expected next offset, dirty shop, ...}.

WRITE (feature hashes). ARGV: epoch, prefix, count, then per shop: shop, revision, hashes, and per hash:
feature set, field count, field/value pairs. A hash is replaced only when its stored revision is lower; the shop
leaves the dirty set only when no newer change arrived meanwhile. Returns the number of hashes written.
"""

APPLY = r"""
local cur = redis.call('GET', 'ss:epoch') or '0'
if cur ~= ARGV[1] then return {'epoch', 0, 0, cur} end
local P = ARGV[2]
local offkey = P .. 'off'
local floor = tonumber(ARGV[4])
local rows = cjson.decode(ARGV[5])
local prev = floor - 1
local stored_fp = nil
local stored = redis.call('HGET', offkey, ARGV[3])
if stored then
  local so, sf = string.match(stored, '^(%-?%d+):(.*)$')
  so = tonumber(so)
  if so >= prev then prev = so; stored_fp = sf end
end
local status, applied, dups = 'ok', 0, 0
local last_fp = nil
local touched, ts_max, changes = {}, {}, {}
local max_period = ''
for _, rec in ipairs(rows) do
  local off, fp, shop = rec[1], rec[2], rec[4]
  if off <= prev then
    if off == prev and last_fp == nil and stored_fp and stored_fp ~= '' and fp ~= '' and fp ~= stored_fp then
      status = 'changed'; break
    end
    dups = dups + 1
  elseif off > prev + 1 then
    status = 'gap'; break
  elseif shop == '' then
    prev = off; last_fp = fp; applied = applied + 1
  else
    local product, period, qty = rec[5], rec[6], rec[7]
    local ck = P .. 'c:' .. shop .. ':' .. period
    local old = redis.call('HGET', ck, product)
    if old ~= qty then
      redis.call('HSET', ck, product, qty)
      if not touched[shop] then touched[shop] = {} end
      touched[shop][period] = true
      changes[shop] = (changes[shop] or 0) + 1
      local ts = rec[3]
      if not ts_max[shop] or ts > ts_max[shop] then ts_max[shop] = ts end
    end
    if period > max_period then max_period = period end
    prev = off; last_fp = fp; applied = applied + 1
  end
end
local out = {status, applied, dups, string.format('%d', prev + 1)}
for shop, periods in pairs(touched) do
  local mk = P .. 'm:' .. shop
  for period, _ in pairs(periods) do
    local flat = redis.call('HGETALL', P .. 'c:' .. shop .. ':' .. period)
    local items = {}
    for j = 1, #flat, 2 do items[#items + 1] = {flat[j], tonumber(flat[j + 1])} end
    table.sort(items, function(a, b) return a[1] < b[1] end)
    local s = 0
    for _, it in ipairs(items) do s = s + it[2] end
    if redis.call('HEXISTS', mk, period) == 0 then redis.call('HINCRBY', P .. 'mr', period, 1) end
    redis.call('HSET', mk, period, string.format('%.17g', s) .. ' ' .. #items)
  end
  redis.call('HINCRBY', mk, '_rev', changes[shop])
  local old_ts = tonumber(redis.call('HGET', mk, '_ts') or '-1')
  if ts_max[shop] > old_ts then redis.call('HSET', mk, '_ts', string.format('%d', ts_max[shop])) end
  redis.call('SADD', P .. 'dirty', shop)
  redis.call('SADD', P .. 'shops', shop)
  out[#out + 1] = shop
end
if last_fp then redis.call('HSET', offkey, ARGV[3], string.format('%d', prev) .. ':' .. last_fp) end
if max_period ~= '' then
  local latest = redis.call('HGET', P .. 'meta', 'latest_month')
  if not latest or max_period > latest then
    redis.call('HSET', P .. 'meta', 'latest_month', max_period)
    if latest then
      local y, m = tonumber(string.sub(latest, 1, 4)), tonumber(string.sub(latest, 6, 7))
      local month = latest
      while month < max_period do
        local retailers = tonumber(redis.call('HGET', P .. 'mr', month) or '0')
        redis.call('RPUSH', P .. 'outbox:months', cjson.encode({month = month, retailers = retailers}))
        m = m + 1
        if m > 12 then m = 1; y = y + 1 end
        month = string.format('%04d-%02d', y, m)
      end
    end
  end
end
return out
"""

WRITE = r"""
local cur = redis.call('GET', 'ss:epoch') or '0'
if cur ~= ARGV[1] then return -1 end
local P = ARGV[2]
local n = tonumber(ARGV[3])
local i = 4
local written = 0
for _ = 1, n do
  local shop, rev, hashes = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i = i + 3
  for _ = 1, hashes do
    local fk = P .. 'f:' .. ARGV[i] .. ':' .. shop
    local nf = tonumber(ARGV[i + 1])
    i = i + 2
    local stored = redis.call('HGET', fk, 'revision')
    if not stored or tonumber(stored) < rev then
      redis.call('DEL', fk)
      local args = {}
      for j = 0, 2 * nf - 1 do args[#args + 1] = ARGV[i + j] end
      redis.call('HSET', fk, unpack(args))
      written = written + 1
    end
    i = i + 2 * nf
  end
  if tonumber(redis.call('HGET', P .. 'm:' .. shop, '_rev') or '0') <= rev then
    redis.call('SREM', P .. 'dirty', shop)
  end
end
return written
"""
