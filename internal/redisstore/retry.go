package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/taskmsg"
)

// Delayed retries. A dispatcher whose delivery must be retried schedules
// the task here, due at now+delay (Schedule); the requeue loop (the SCF
// timer function, a goroutine of serve) claims the due ones (Claim),
// produces them to the task topic and then removes them (Done). Claim
// does not remove: it pushes the claimed entries' due time lease ahead,
// so a claimer that dies before Done leaves them to come back then — at
// least once, never lost.

// Retries is the delayed-retry set of the store.
type Retries struct{ s *Store }

// Retries returns the store's delayed-retry set.
func (s *Store) Retries() *Retries { return &Retries{s} }

// Due is one claimed retry. Err is set (it matches taskmsg.ErrUndecodable)
// when the stored body is not a task; Done it to drop it.
type Due struct {
	Member string
	Task   delivery.Task
	At     time.Time
	Err    error
}

// claimScript: KEYS retry zset, bodies hash; ARGV now (ms), lease end
// (ms), max.
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #ids, 2 do
  redis.call('ZADD', KEYS[1], ARGV[2], ids[i])
  out[#out+1] = ids[i]
  out[#out+1] = ids[i+1]
  out[#out+1] = redis.call('HGET', KEYS[2], ids[i]) or ''
end
return out`)

func (r *Retries) zset() string   { return r.s.key("retry") }
func (r *Retries) bodies() string { return r.s.key("retry", "body") }

// member is a retry's entry: the task id and its attempt count, so that a
// later retry of the same task is another entry.
func member(t delivery.Task) string { return t.ID + "#" + strconv.Itoa(t.Attempt) }

// Schedule keeps t until at, in one MULTI (the body, then its due time).
func (r *Retries) Schedule(ctx context.Context, t delivery.Task, at time.Time) error {
	body, err := taskmsg.Encode(t, 0)
	if err != nil {
		return fmt.Errorf("schedule task %s: %w", t.ID, err)
	}
	m := member(t)
	_, err = r.s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.bodies(), m, body)
		p.ZAdd(ctx, r.zset(), redis.Z{Score: ms(at), Member: m})
		return nil
	})
	if err != nil {
		return fmt.Errorf("schedule task %s in redis: %w", t.ID, err)
	}
	return nil
}

// Claim takes up to max retries due at now, atomically: their due time
// moves to now+lease, so no other claimer takes them meanwhile. Call
// Done once they are produced.
func (r *Retries) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]Due, error) {
	vals, err := claimScript.Run(ctx, r.s.rdb, []string{r.zset(), r.bodies()},
		now.UnixMilli(), now.Add(lease).UnixMilli(), max).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("claim due retries: %w", err)
	}
	out := make([]Due, 0, len(vals)/3)
	for i := 0; i+2 < len(vals); i += 3 {
		d := Due{Member: vals[i]}
		if score, err := strconv.ParseFloat(vals[i+1], 64); err == nil {
			d.At = time.UnixMilli(int64(score))
		}
		d.Task, d.Err = taskmsg.Decode([]byte(vals[i+2]))
		out = append(out, d)
	}
	return out, nil
}

// Done removes claimed retries for good.
func (r *Retries) Done(ctx context.Context, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	_, err := r.s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		args := make([]any, len(members))
		for i, m := range members {
			args[i] = m
		}
		p.ZRem(ctx, r.zset(), args...)
		p.HDel(ctx, r.bodies(), members...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove produced retries: %w", err)
	}
	return nil
}

// Pending returns the scheduled retries of the trigger named trigger (""
// for all), soonest due first; bodies that do not decode are left out.
func (r *Retries) Pending(ctx context.Context, trigger string) ([]Due, error) {
	zs, err := r.s.rdb.ZRangeWithScores(ctx, r.zset(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list scheduled retries: %w", err)
	}
	if len(zs) == 0 {
		return nil, nil
	}
	members := make([]string, len(zs))
	for i, z := range zs {
		members[i] = fmt.Sprint(z.Member)
	}
	bodies, err := r.s.rdb.HMGet(ctx, r.bodies(), members...).Result()
	if err != nil {
		return nil, fmt.Errorf("list scheduled retries: %w", err)
	}
	var out []Due
	for i, b := range bodies {
		s, ok := b.(string)
		if !ok {
			continue
		}
		t, err := taskmsg.Decode([]byte(s))
		if err != nil || (trigger != "" && t.Trigger.Name != trigger) {
			continue
		}
		out = append(out, Due{Member: members[i], Task: t, At: time.UnixMilli(int64(zs[i].Score))})
	}
	slices.SortStableFunc(out, func(a, b Due) int { return a.At.Compare(b.At) })
	return out, nil
}

// NextDue reports when the earliest scheduled retry is due.
func (r *Retries) NextDue(ctx context.Context) (time.Time, bool, error) {
	zs, err := r.s.rdb.ZRangeWithScores(ctx, r.zset(), 0, 0).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next scheduled retry: %w", err)
	}
	if len(zs) == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(int64(zs[0].Score)), true, nil
}

// RequeueLease is how long claimed retries stay hidden while Requeue
// produces them.
const RequeueLease = time.Minute

// requeueBatch is how many retries one claim takes.
const requeueBatch = 100

// Requeue claims the retries due at now and hands them to produce (the
// task topic's producer), batch by batch, removing each batch once it is
// produced, until none is due or ctx ends; it returns how many it moved.
// A batch produce fails is left claimed and comes back after
// RequeueLease. Bodies that are not tasks are removed (and counted in
// dropped): they would never decode.
//
// The SCF timer function and serve's requeue loop both run it; two of
// them at once never take the same retry.
func (r *Retries) Requeue(ctx context.Context, now func() time.Time, produce func(ctx context.Context, tasks []delivery.Task) error) (moved, dropped int, err error) {
	for ctx.Err() == nil {
		due, err := r.Claim(ctx, now(), RequeueLease, requeueBatch)
		if err != nil || len(due) == 0 {
			return moved, dropped, err
		}
		tasks := make([]delivery.Task, 0, len(due))
		members := make([]string, 0, len(due))
		var bad []string
		for _, d := range due {
			if d.Err != nil {
				bad = append(bad, d.Member)
				continue
			}
			tasks = append(tasks, d.Task)
			members = append(members, d.Member)
		}
		if len(bad) > 0 {
			if err := r.Done(ctx, bad...); err != nil {
				return moved, dropped, err
			}
			dropped += len(bad)
		}
		if err := produce(ctx, tasks); err != nil {
			return moved, dropped, fmt.Errorf("produce %d due retries: %w", len(tasks), err)
		}
		if err := r.Done(ctx, members...); err != nil {
			// Produced but still claimed: they come back after the lease
			// and are produced again (same ids: at least once).
			return moved, dropped, err
		}
		moved += len(tasks)
	}
	return moved, dropped, ctx.Err()
}
