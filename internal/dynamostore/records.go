package dynamostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regtrigger/regtrigger/internal/record"
)

var _ record.Store = (*Records)(nil)

// Records is the trigger log side of the store.
//
// Item: trigger (HASH), sk = time#task#attempt (RANGE), task_id, status,
// expires_at (TTL), doc = the record's JSON; and, only for the statuses an
// operator looks for (IndexedStatuses), status_day = status#YYYY-MM-DD, the
// key of the sparse by-failure index. The time is UTC with a fixed width, so
// string order is time order and Since and the retention floor are a range
// condition on sk.
//
// A record of any other status is written to the table alone: one write
// unit for a record under 1 KB. See docs/dynamodb.md for what each query
// reads.
type Records struct{ s *Store }

// Records returns the store's record.Store.
func (s *Store) Records() *Records { return &Records{s} }

// timeLayout is fixed-width so that sort keys order by time.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// dayLayout is the day part of the by-failure index key.
const dayLayout = "2006-01-02"

// noTrigger stands in for an empty trigger name in the partition key (key
// attributes cannot be empty; trigger names never start with '_').
const noTrigger = "_"

// IndexedStatuses are the statuses the sparse by-failure index holds: the
// final failures an operator looks for across triggers. Every other status
// (success, retrying, skipped, cancelled, untriggered) is read by trigger,
// or by a Scan when no trigger is given: indexing retrying too would double
// the write cost of every retry (docs/dynamodb.md).
var IndexedStatuses = []record.Status{record.Failed, record.Blocked}

func indexed(s record.Status) bool { return slices.Contains(IndexedStatuses, s) }

// statusDay is the by-failure index key of a record of status s at t.
func statusDay(s record.Status, t time.Time) string {
	return string(s) + "#" + t.UTC().Format(dayLayout)
}

// sortKey is the records' sort key for r.
func sortKey(r record.Record) string {
	return r.Time.UTC().Format(timeLayout) + "#" + r.TaskID + "#" + strconv.Itoa(r.Attempt)
}

// Put stores a record, expiring retention after its time. A throttled
// write is tried again with backoff (see retryThrottled) while ctx allows.
func (rs *Records) Put(ctx context.Context, r record.Record) error {
	s := rs.s
	if r.Time.IsZero() {
		r.Time = s.now()
	}
	r.Time = r.Time.UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store record of task %s: %w", r.TaskID, err)
	}
	pk := r.Trigger
	if pk == "" {
		pk = noTrigger
	}
	item := map[string]types.AttributeValue{
		attrTrigger:  str(pk),
		attrSK:       str(sortKey(r)),
		TTLAttribute: expiry(r.Time.Add(s.retention)),
		attrDoc:      str(string(b)),
	}
	// Plain attributes for filters; left out when empty.
	if r.TaskID != "" {
		item[attrTaskID] = str(r.TaskID)
	}
	if r.Status != "" {
		item[attrStatus] = str(string(r.Status))
	}
	if indexed(r.Status) {
		item[attrStatusDay] = str(statusDay(r.Status, r.Time))
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.tables.Records), Item: item}
	err = retryThrottled(ctx, s.throttleBackoff, func() error {
		_, err := s.db.PutItem(ctx, in)
		return err
	})
	if err != nil {
		return fmt.Errorf("store record of task %s: %w", r.TaskID, err)
	}
	return nil
}

// List returns records newest first. Records older than the retention are
// never returned, whether or not TTL removed them yet. What it reads:
//
//   - a trigger (with or without a status or task): one Query of the
//     trigger's partition, strongly consistent, the rest a filter;
//   - a task: the archived task names its trigger (a GetItem), then that
//     partition from the task's creation; a task not archived (still being
//     retried, or unknown) is looked for with a Scan;
//   - an indexed status (failed, blocked): the by-failure index, one day
//     partition after the other, newest first;
//   - anything else (no filter, or another status): a Scan of the table,
//     keeping the newest Limit records. It reads every retained record, so
//     it is for the CLI's occasional look, not for a hot path.
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
	var (
		out []record.Record
		err error
	)
	switch {
	case q.Trigger != "":
		out, err = rs.queryTrigger(ctx, q, floor, limit)
	case q.TaskID != "":
		out, err = rs.listTask(ctx, q, floor, limit)
	case q.Status != "" && indexed(q.Status):
		out, err = rs.queryStatus(ctx, q.Status, floor, limit)
	default:
		out, err = rs.scan(ctx, q, floor, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	return out, nil
}

// filters builds a filter expression of equality conditions.
type filters struct {
	names  map[string]string
	values map[string]types.AttributeValue
	exprs  []string
}

func newFilters(floor time.Time) *filters {
	return &filters{
		names:  map[string]string{"#sk": attrSK},
		values: map[string]types.AttributeValue{":floor": str(floor.UTC().Format(timeLayout))},
	}
}

func (f *filters) eq(attr, placeholder, value string) {
	f.names["#"+placeholder] = attr
	f.values[":"+placeholder] = str(value)
	f.exprs = append(f.exprs, "#"+placeholder+" = :"+placeholder)
}

func (f *filters) add(expr string) { f.exprs = append(f.exprs, expr) }

func (f *filters) expr() *string {
	if len(f.exprs) == 0 {
		return nil
	}
	return aws.String(strings.Join(f.exprs, " AND "))
}

// queryTrigger reads one trigger's partition newest first.
func (rs *Records) queryTrigger(ctx context.Context, q record.Query, floor time.Time, limit int) ([]record.Record, error) {
	f := newFilters(floor)
	f.names["#pk"] = attrTrigger
	f.values[":pk"] = str(q.Trigger)
	if q.Status != "" {
		f.eq(attrStatus, "status", string(q.Status))
	}
	if q.TaskID != "" {
		f.eq(attrTaskID, "task", q.TaskID)
	}
	in := &dynamodb.QueryInput{
		TableName:              aws.String(rs.s.tables.Records),
		KeyConditionExpression: aws.String("#pk = :pk AND #sk >= :floor"),
		ConsistentRead:         aws.Bool(true),
		ScanIndexForward:       aws.Bool(false),
		FilterExpression:       f.expr(),
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = f.names, f.values
	if in.FilterExpression == nil {
		// Without a filter every item read is returned: read no more
		// than needed.
		in.Limit = aws.Int32(int32(min(limit, 1000)))
	}
	return rs.query(ctx, in, limit, nil)
}

// listTask finds a task's records through its archived copy, which names
// the trigger and when the task was made; a task without one is scanned for.
func (rs *Records) listTask(ctx context.Context, q record.Query, floor time.Time, limit int) ([]record.Record, error) {
	t, err := rs.Archived(ctx, q.TaskID)
	switch {
	case errors.Is(err, ErrNotArchived):
		return rs.scan(ctx, q, floor, limit)
	case err != nil:
		return nil, err
	}
	q.Trigger = t.Trigger.Name
	if created := t.CreatedAt.Add(-time.Second); created.After(floor) {
		floor = created
	}
	return rs.queryTrigger(ctx, q, floor, limit)
}

// queryStatus reads the sparse by-failure index, one day after the other,
// newest first, down to the floor's day.
func (rs *Records) queryStatus(ctx context.Context, st record.Status, floor time.Time, limit int) ([]record.Record, error) {
	var out []record.Record
	firstDay := floor.UTC().Truncate(24 * time.Hour)
	for day := rs.s.now().UTC().Truncate(24 * time.Hour); !day.Before(firstDay) && len(out) < limit; day = day.Add(-24 * time.Hour) {
		in := &dynamodb.QueryInput{
			TableName:              aws.String(rs.s.tables.Records),
			IndexName:              aws.String(IndexRecordsByFailure),
			KeyConditionExpression: aws.String("#pk = :pk AND #sk >= :floor"),
			ScanIndexForward:       aws.Bool(false),
			ExpressionAttributeNames: map[string]string{
				"#pk": attrStatusDay, "#sk": attrSK,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk":    str(statusDay(st, day)),
				":floor": str(floor.UTC().Format(timeLayout)),
			},
			Limit: aws.Int32(int32(min(limit-len(out), 1000))),
		}
		var err error
		if out, err = rs.query(ctx, in, limit, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// query appends the records of a paginated Query to out, up to limit.
func (rs *Records) query(ctx context.Context, in *dynamodb.QueryInput, limit int, out []record.Record) ([]record.Record, error) {
	p := dynamodb.NewQueryPaginator(rs.s.db, in)
	for p.HasMorePages() && len(out) < limit {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			r, err := decodeRecord(item)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// scan reads the whole table (records of every trigger; archived tasks are
// filtered out) and keeps the newest limit records that match q.
func (rs *Records) scan(ctx context.Context, q record.Query, floor time.Time, limit int) ([]record.Record, error) {
	f := newFilters(floor)
	f.names["#pk"] = attrTrigger
	f.values[":archive"] = str(archivePrefix)
	f.add("#sk >= :floor")
	f.add("NOT begins_with(#pk, :archive)")
	if q.Status != "" {
		f.eq(attrStatus, "status", string(q.Status))
	}
	if q.TaskID != "" {
		f.eq(attrTaskID, "task", q.TaskID)
	}
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(rs.s.tables.Records),
		FilterExpression:          f.expr(),
		ExpressionAttributeNames:  f.names,
		ExpressionAttributeValues: f.values,
	}
	type found struct {
		sk string
		r  record.Record
	}
	var keep []found
	newestFirst := func(a, b found) int { return strings.Compare(b.sk, a.sk) }
	p := dynamodb.NewScanPaginator(rs.s.db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			r, err := decodeRecord(item)
			if err != nil {
				return nil, err
			}
			sk, _ := getS(item, attrSK)
			keep = append(keep, found{sk, r})
		}
		// Bounded memory: keep only the newest limit between pages.
		if len(keep) > 2*limit {
			slices.SortFunc(keep, newestFirst)
			keep = keep[:limit]
		}
	}
	slices.SortFunc(keep, newestFirst)
	out := make([]record.Record, 0, min(len(keep), limit))
	for _, k := range keep[:min(len(keep), limit)] {
		out = append(out, k.r)
	}
	return out, nil
}

func decodeRecord(item map[string]types.AttributeValue) (record.Record, error) {
	doc, ok := getS(item, attrDoc)
	if !ok {
		return record.Record{}, fmt.Errorf("stored record without %s", attrDoc)
	}
	var r record.Record
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return record.Record{}, fmt.Errorf("decode record: %w", err)
	}
	return r, nil
}

// expiry is the TTL value of an item that lives until t.
func expiry(t time.Time) types.AttributeValue { return num(t.Unix()) }
