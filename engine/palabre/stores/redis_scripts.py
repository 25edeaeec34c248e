"""The Lua scripts of the Redis store's turn queues (see palabre.stores.redis).

Each runs atomically in Redis. Token keys (`alive:`, `wake:`) are built from the prefix
inside the scripts, so they work on one Redis server, not across a cluster's slots.
Common ARGV: [1] the token, [2] the key prefix, [3] the lease in milliseconds.
"""

# Drop dead heads (their alive key lapsed), wake the new head if it changed, and return
# the head, or nil when `token` is no longer queued at all.
_HEAD = """
local function head_of(queue, token, prefix, lease_ms)
  local head = redis.call("lindex", queue, 0)
  local dropped = false
  while head and redis.call("exists", prefix .. "alive:" .. head) == 0 do
    redis.call("lpop", queue)
    dropped = true
    head = redis.call("lindex", queue, 0)
  end
  if dropped and head and head ~= token then
    redis.call("rpush", prefix .. "wake:" .. head, "1")
    redis.call("pexpire", prefix .. "wake:" .. head, lease_ms)
  end
  if head ~= token and not redis.call("lpos", queue, token) then return nil end
  return head
end
"""

# Leave the queue: pop (or remove) the token, forget it, wake the next head.
_LEAVE = """
local function leave(queue, token, prefix, lease_ms)
  local was_head = redis.call("lindex", queue, 0) == token
  if was_head then redis.call("lpop", queue) else redis.call("lrem", queue, 1, token) end
  redis.call("del", prefix .. "alive:" .. token, prefix .. "wake:" .. token)
  local head = redis.call("lindex", queue, 0)
  if was_head and head then
    redis.call("rpush", prefix .. "wake:" .. head, "1")
    redis.call("pexpire", prefix .. "wake:" .. head, lease_ms)
  end
end
"""

# KEYS: queue, then optionally seen and session. ARGV: token, prefix, lease ms, queue
# TTL s. Join the queue; return {head}, and when the turn is ours at once and KEYS has
# them, {head, seen, session}: the turn's first read rides on its arrival.
ARRIVE = (
    _HEAD
    + """
redis.call("set", ARGV[2] .. "alive:" .. ARGV[1], "1", "PX", ARGV[3])
redis.call("rpush", KEYS[1], ARGV[1])
redis.call("expire", KEYS[1], ARGV[4])
local head = head_of(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if head == ARGV[1] and #KEYS == 3 then
  return {head, redis.call("exists", KEYS[2]), redis.call("get", KEYS[3])}
end
return {head}
"""
)

# KEYS: queue. ARGV: token, prefix, lease ms. The head after dropping dead ones.
HEAD = _HEAD + "return head_of(KEYS[1], ARGV[1], ARGV[2], ARGV[3])"

# KEYS: queue. ARGV: token, prefix, lease ms.
LEAVE = _LEAVE + "leave(KEYS[1], ARGV[1], ARGV[2], ARGV[3])\nreturn 1"

# KEYS: session, seen, queue ("" without a lease). ARGV: data ("" deletes), session TTL s,
# seen TTL s, "1" to mark seen, then token, prefix, lease ms ("" without a lease).
# Returns 0, writing nothing, when the token no longer heads the queue or is not alive.
COMMIT_AND_LEAVE = (
    _LEAVE
    + """
local token, prefix = ARGV[5], ARGV[6]
if token ~= "" then
  if redis.call("lindex", KEYS[3], 0) ~= token
     or redis.call("exists", prefix .. "alive:" .. token) == 0 then
    return 0
  end
end
if ARGV[1] == "" then redis.call("del", KEYS[1])
else redis.call("set", KEYS[1], ARGV[1], "EX", ARGV[2]) end
if ARGV[4] == "1" then redis.call("set", KEYS[2], "1", "EX", ARGV[3]) end
if token ~= "" then leave(KEYS[3], token, prefix, ARGV[7]) end
return 1
"""
)

# ARGV: prefix, lease ms, then the tokens to renew. Returns 1 per token still alive, else 0.
RENEW = """
local held = {}
for i = 3, #ARGV do
  held[#held + 1] = redis.call("pexpire", ARGV[1] .. "alive:" .. ARGV[i], ARGV[2])
end
return held
"""
