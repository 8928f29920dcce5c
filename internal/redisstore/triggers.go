package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

var _ trigger.Store = (*Triggers)(nil)

// Triggers is the trigger side of the store.
type Triggers struct{ s *Store }

// Triggers returns the store's trigger.Store.
func (s *Store) Triggers() *Triggers { return &Triggers{s} }

// Results of the write scripts (a stored version is >= 1).
const (
	resNotFound = -1
	resOK       = -2
)

var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'version', ARGV[2], 'namespace', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[4])
return 1`)

// updateScript: KEYS trigger, ns set (new); ARGV doc, new version,
// namespace, name, expected version, ns key prefix.
var updateScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return -1 end
if v ~= ARGV[5] then return tonumber(v) end
local old = redis.call('HGET', KEYS[1], 'namespace')
if old and old ~= ARGV[3] then redis.call('SREM', ARGV[6] .. old, ARGV[4]) end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'version', ARGV[2], 'namespace', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return -2`)

// deleteScript: KEYS trigger, names set; ARGV name, expected version (0 =
// any), ns key prefix.
var deleteScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return -1 end
if ARGV[2] ~= '0' and v ~= ARGV[2] then return tonumber(v) end
local ns = redis.call('HGET', KEYS[1], 'namespace')
if ns then redis.call('SREM', ARGV[3] .. ns, ARGV[1]) end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return -2`)

// readScript returns doc, version pairs of the triggers named in the set
// KEYS[1]; ARGV[1] is the trigger key prefix. One round trip, one
// consistent view.
var readScript = redis.NewScript(`
local names = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, n in ipairs(names) do
  local d = redis.call('HMGET', ARGV[1] .. n, 'doc', 'version')
  if d[1] then out[#out+1] = d[1]; out[#out+1] = d[2] end
end
return out`)

func (ts *Triggers) triggerKey(name string) string { return ts.s.key("trigger", name) }
func (ts *Triggers) nsKey(ns string) string        { return ts.s.key("ns", ns) }
func (ts *Triggers) namesKey() string              { return ts.s.key("triggers") }

// Namespace returns the triggers of one namespace in name order.
func (ts *Triggers) Namespace(ctx context.Context, namespace string) ([]trigger.Trigger, error) {
	out, err := ts.read(ctx, ts.nsKey(namespace))
	if err != nil {
		return nil, fmt.Errorf("load triggers for %s: %w", namespace, err)
	}
	return out, nil
}

// List returns every trigger in name order.
func (ts *Triggers) List(ctx context.Context) ([]trigger.Trigger, error) {
	out, err := ts.read(ctx, ts.namesKey())
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	return out, nil
}

func (ts *Triggers) read(ctx context.Context, set string) ([]trigger.Trigger, error) {
	vals, err := readScript.Run(ctx, ts.s.rdb, []string{set}, ts.s.key("trigger", "")).StringSlice()
	if err != nil {
		return nil, err
	}
	out := make([]trigger.Trigger, 0, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		t, err := decodeTrigger(vals[i], vals[i+1])
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns one trigger, or trigger.ErrNotFound.
func (ts *Triggers) Get(ctx context.Context, name string) (trigger.Trigger, error) {
	vals, err := ts.s.rdb.HMGet(ctx, ts.triggerKey(name), "doc", "version").Result()
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("get trigger %s: %w", name, err)
	}
	doc, ok := vals[0].(string)
	if !ok {
		return trigger.Trigger{}, fmt.Errorf("get trigger %s: %w", name, trigger.ErrNotFound)
	}
	version, _ := vals[1].(string)
	t, err := decodeTrigger(doc, version)
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("get trigger %s: %w", name, err)
	}
	return t, nil
}

// Create stores a new trigger at version 1, or returns trigger.ErrExists.
func (ts *Triggers) Create(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	t.Version, t.UpdatedAt = 1, ts.s.now().UTC()
	doc, err := json.Marshal(t)
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("create trigger %s: %w", t.Name, err)
	}
	n, err := createScript.Run(ctx, ts.s.rdb, []string{ts.triggerKey(t.Name), ts.namesKey(), ts.nsKey(t.Namespace)},
		string(doc), t.Version, t.Namespace, t.Name).Int()
	switch {
	case err != nil:
		return trigger.Trigger{}, fmt.Errorf("create trigger %s: %w", t.Name, err)
	case n == 0:
		return trigger.Trigger{}, fmt.Errorf("create trigger %s: %w", t.Name, trigger.ErrExists)
	}
	return t, nil
}

// Update replaces the trigger if its stored version is t.Version, or
// returns trigger.ErrNotFound / trigger.ErrConflict.
func (ts *Triggers) Update(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	yours := t.Version
	t.Version, t.UpdatedAt = yours+1, ts.s.now().UTC()
	doc, err := json.Marshal(t)
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("update trigger %s: %w", t.Name, err)
	}
	n, err := updateScript.Run(ctx, ts.s.rdb, []string{ts.triggerKey(t.Name), ts.nsKey(t.Namespace)},
		string(doc), t.Version, t.Namespace, t.Name, yours, ts.s.key("ns", "")).Int64()
	if err := result(n, err, yours); err != nil {
		return trigger.Trigger{}, fmt.Errorf("update trigger %s: %w", t.Name, err)
	}
	return t, nil
}

// Delete removes the trigger if its stored version is version (0: any), or
// returns trigger.ErrNotFound / trigger.ErrConflict.
func (ts *Triggers) Delete(ctx context.Context, name string, version int64) error {
	n, err := deleteScript.Run(ctx, ts.s.rdb, []string{ts.triggerKey(name), ts.namesKey()},
		name, version, ts.s.key("ns", "")).Int64()
	if err := result(n, err, version); err != nil {
		return fmt.Errorf("delete trigger %s: %w", name, err)
	}
	return nil
}

func result(n int64, err error, yours int64) error {
	switch {
	case err != nil:
		return err
	case n == resOK:
		return nil
	case n == resNotFound:
		return trigger.ErrNotFound
	}
	return fmt.Errorf("%w: stored version %d, yours %d", trigger.ErrConflict, n, yours)
}

func decodeTrigger(doc, version string) (trigger.Trigger, error) {
	var t trigger.Trigger
	if err := json.Unmarshal([]byte(doc), &t); err != nil {
		return t, fmt.Errorf("decode stored trigger: %w", err)
	}
	// The hash's version field is authoritative.
	if v, err := strconv.ParseInt(version, 10, 64); err == nil {
		t.Version = v
	}
	return t, nil
}

// errNil reports whether err is Redis's "no such key".
func errNil(err error) bool { return errors.Is(err, redis.Nil) }
