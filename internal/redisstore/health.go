package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regtrigger/regtrigger/internal/delivery"
)

var _ delivery.Health = (*Health)(nil)

// Health is the delivery policies' state:
//
//	{p}:health:target:<target>   hash  failures, open_until, cool_down_ms, probe_until (unix ms)
//	{p}:health:trigger:<name>    str   failing_since (unix ms)
//
// A failure is HINCRBY, so racing dispatchers count every one; opening a
// circuit and claiming its probe are Lua scripts that compare before they
// write, so of racing dispatchers one wins. Keys expire healthTTL after
// their last write; a recovered target or trigger has none.
type Health struct{ s *Store }

// Health returns the store's delivery.Health.
func (s *Store) Health() *Health { return &Health{s} }

// healthTTL is how long a health key outlives its last write.
const healthTTL = 30 * 24 * time.Hour

func (h *Health) targetKey(t string) string  { return h.s.key("health", "target", t) }
func (h *Health) triggerKey(n string) string { return h.s.key("health", "trigger", n) }

// Read returns the state of target and trigger: one pipelined round trip.
func (h *Health) Read(ctx context.Context, target, trigger string) (delivery.State, error) {
	var st delivery.State
	var tc *redis.MapStringStringCmd
	var gc *redis.StringCmd
	_, err := h.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if target != "" {
			tc = p.HGetAll(ctx, h.targetKey(target))
		}
		if trigger != "" {
			gc = p.Get(ctx, h.triggerKey(trigger))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return st, fmt.Errorf("read health: %w", err)
	}
	if tc != nil {
		st.Target = targetState(tc.Val())
	}
	if gc != nil {
		st.FailingSince = millis(gc.Val())
	}
	return st, nil
}

// failScript marks a trigger failing since ARGV[1] unless it is, and
// returns the time it has been failing since.
var failScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('GET', KEYS[1])
`)

// Failed adds a failure to target (HINCRBY) and marks trigger failing
// since now unless it is.
func (h *Health) Failed(ctx context.Context, target, trigger string, now time.Time) (delivery.State, error) {
	var st delivery.State
	ttl := healthTTL.Milliseconds()
	if target != "" {
		k := h.targetKey(target)
		var all *redis.MapStringStringCmd
		_, err := h.s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HIncrBy(ctx, k, "failures", 1)
			p.PExpire(ctx, k, healthTTL)
			all = p.HGetAll(ctx, k)
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("count target failure: %w", err)
		}
		st.Target = targetState(all.Val())
	}
	if trigger != "" {
		v, err := failScript.Run(ctx, h.s.rdb, []string{h.triggerKey(trigger)}, now.UnixMilli(), ttl).Text()
		if err != nil {
			return st, fmt.Errorf("mark trigger failing: %w", err)
		}
		st.FailingSince = millis(v)
	}
	return st, nil
}

// Recovered deletes target's and trigger's keys.
func (h *Health) Recovered(ctx context.Context, target, trigger string) error {
	var keys []string
	if target != "" {
		keys = append(keys, h.targetKey(target))
	}
	if trigger != "" {
		keys = append(keys, h.triggerKey(trigger))
	}
	if len(keys) == 0 {
		return nil
	}
	if err := h.s.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("forget health: %w", err)
	}
	return nil
}

// openScript opens the circuit if open_until is still ARGV[1] ("0": closed).
var openScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'open_until') or '0'
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'open_until', ARGV[2], 'cool_down_ms', ARGV[3])
redis.call('HDEL', KEYS[1], 'probe_until')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// OpenCircuit opens target's circuit if open_until is still prev.
func (h *Health) OpenCircuit(ctx context.Context, target string, prev, until time.Time, coolDown time.Duration) (bool, error) {
	p := "0"
	if !prev.IsZero() {
		p = strconv.FormatInt(prev.UnixMilli(), 10)
	}
	n, err := openScript.Run(ctx, h.s.rdb, []string{h.targetKey(target)}, p, until.UnixMilli(), coolDown.Milliseconds(), healthTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("open circuit: %w", err)
	}
	return n == 1, nil
}

// probeScript claims the probe if the circuit is open, its cool-down
// over (open_until <= ARGV[1]) and no earlier probe's lease runs.
var probeScript = redis.NewScript(`
local o = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local p = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
local now = tonumber(ARGV[1])
if o == 0 or o > now or p > now then return 0 end
redis.call('HSET', KEYS[1], 'probe_until', ARGV[2])
return 1
`)

// ClaimProbe claims the probe of a half-open circuit.
func (h *Health) ClaimProbe(ctx context.Context, target string, now, until time.Time) (bool, error) {
	n, err := probeScript.Run(ctx, h.s.rdb, []string{h.targetKey(target)}, now.UnixMilli(), until.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("claim circuit probe: %w", err)
	}
	return n == 1, nil
}

func targetState(m map[string]string) delivery.TargetState {
	f, _ := strconv.ParseInt(m["failures"], 10, 64)
	cd, _ := strconv.ParseInt(m["cool_down_ms"], 10, 64)
	return delivery.TargetState{
		Failures: f, OpenUntil: millis(m["open_until"]), CoolDown: time.Duration(cd) * time.Millisecond,
		ProbeUntil: millis(m["probe_until"]),
	}
}

func millis(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}
