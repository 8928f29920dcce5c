package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/regtrigger/regtrigger/internal/record"
)

var _ record.Store = (*Records)(nil)

// Records is the trigger log side of the store.
type Records struct{ s *Store }

// Records returns the store's record.Store.
func (s *Store) Records() *Records { return &Records{s} }

// listPage is how many ids List reads per round trip.
const listPage = 200

// Put stores a record until its time plus the retention, in one MULTI:
// the record, its entry in each index, and a trim of each index's expired
// entries.
func (rs *Records) Put(ctx context.Context, r record.Record) error {
	s := rs.s
	if r.Time.IsZero() {
		r.Time = s.now()
	}
	r.Time = r.Time.UTC()
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store record of task %s: %w", r.TaskID, err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	id := strconv.FormatInt(r.Time.UnixNano(), 10) + "-" + r.TaskID + "-" + strconv.Itoa(r.Attempt) + "-" + hex.EncodeToString(rnd[:])
	ttl := r.Time.Add(s.retention).Sub(s.now())
	if ttl <= 0 {
		return nil // already past the retention: nothing to keep
	}
	floor := strconv.FormatInt(s.now().Add(-s.retention).UnixMilli(), 10)
	z := redis.Z{Score: ms(r.Time), Member: id}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.key("rec", id), doc, ttl)
		for i, idx := range rs.indexes(r) {
			p.ZAdd(ctx, idx, z)
			p.ZRemRangeByScore(ctx, idx, "-inf", "("+floor)
			if i > 0 { // the per-trigger, status and task indexes go with their newest record
				p.PExpire(ctx, idx, ttl)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store record of task %s: %w", r.TaskID, err)
	}
	return nil
}

// indexes are the index keys a record is in, the feed of all first.
func (rs *Records) indexes(r record.Record) []string {
	out := []string{rs.s.key("recs")}
	if r.Trigger != "" {
		out = append(out, rs.s.key("recs", "trigger", r.Trigger))
	}
	if r.Status != "" {
		out = append(out, rs.s.key("recs", "status", string(r.Status)))
	}
	if r.TaskID != "" {
		out = append(out, rs.s.key("recs", "task", r.TaskID))
	}
	return out
}

// List returns records newest first. It reads the narrowest index (task,
// trigger, status, or all) from the newest entry down to Since or the
// retention, and filters the other conditions here.
func (rs *Records) List(ctx context.Context, q record.Query) ([]record.Record, error) {
	s := rs.s
	limit := q.Limit
	if limit <= 0 {
		limit = record.DefaultLimit
	}
	floor := s.now().Add(-s.retention)
	if q.Since.After(floor) {
		floor = q.Since
	}
	var idx string
	switch {
	case q.TaskID != "":
		idx = s.key("recs", "task", q.TaskID)
	case q.Trigger != "":
		idx = s.key("recs", "trigger", q.Trigger)
	case q.Status != "":
		idx = s.key("recs", "status", string(q.Status))
	default:
		idx = s.key("recs")
	}
	out := make([]record.Record, 0, min(limit, 100))
	for offset := int64(0); len(out) < limit; offset += listPage {
		ids, err := s.rdb.ZRevRangeByScore(ctx, idx, &redis.ZRangeBy{
			Max: "+inf", Min: strconv.FormatInt(floor.UnixMilli(), 10), Offset: offset, Count: listPage,
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("list records: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = s.key("rec", id)
		}
		docs, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("list records: %w", err)
		}
		for _, d := range docs {
			doc, ok := d.(string)
			if !ok {
				continue // expired since it was indexed
			}
			var r record.Record
			if err := json.Unmarshal([]byte(doc), &r); err != nil {
				return nil, fmt.Errorf("list records: decode record: %w", err)
			}
			if (q.Trigger != "" && r.Trigger != q.Trigger) || (q.Status != "" && r.Status != q.Status) || r.Time.Before(floor) {
				continue
			}
			out = append(out, r)
			if len(out) == limit {
				break
			}
		}
		if len(ids) < listPage {
			break
		}
	}
	return out, nil
}
