package dynamostore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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
// feed = "all", expires_at (TTL), doc = the record's JSON. The time is UTC
// with a fixed width, so string order is time order and Since and the
// retention floor are a range condition on sk.
type Records struct{ s *Store }

// Records returns the store's record.Store.
func (s *Store) Records() *Records { return &Records{s} }

// timeLayout is fixed-width so that sort keys order by time.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// feedAll is the single partition key of the by-time index.
const feedAll = "all"

// noTrigger stands in for an empty trigger name in the partition key (key
// attributes cannot be empty; trigger names never start with '_').
const noTrigger = "_"

// sortKey is the records' sort key for r.
func sortKey(r record.Record) string {
	return r.Time.UTC().Format(timeLayout) + "#" + r.TaskID + "#" + strconv.Itoa(r.Attempt)
}

// Put stores a record, expiring retention after its time.
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
		attrFeed:     str(feedAll),
		TTLAttribute: expiry(r.Time.Add(s.retention)),
		attrDoc:      str(string(b)),
	}
	// Index keys cannot be empty strings: leave them out (the record is
	// then simply absent from that index).
	if r.TaskID != "" {
		item[attrTaskID] = str(r.TaskID)
	}
	if r.Status != "" {
		item[attrStatus] = str(string(r.Status))
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.tables.Records), Item: item})
	if err != nil {
		return fmt.Errorf("store record of task %s: %w", r.TaskID, err)
	}
	return nil
}

// List returns records newest first. It queries the narrowest key: the task
// index, the trigger's partition, the status index or the by-time index,
// and filters the remaining conditions on the server. Records older than
// the retention are never returned, whether or not TTL removed them yet.
func (rs *Records) List(ctx context.Context, q record.Query) ([]record.Record, error) {
	s := rs.s
	limit := q.Limit
	if limit <= 0 {
		limit = record.DefaultLimit
	}
	oldest := s.now().Add(-s.retention)
	if q.Since.After(oldest) {
		oldest = q.Since
	}
	names := map[string]string{"#sk": attrSK}
	values := map[string]types.AttributeValue{":floor": str(oldest.UTC().Format(timeLayout))}
	in := &dynamodb.QueryInput{
		TableName:        aws.String(s.tables.Records),
		ScanIndexForward: aws.Bool(false),
	}
	var key string
	var filters []string
	filter := func(attr, placeholder, value string) {
		names["#"+placeholder] = attr
		values[":"+placeholder] = str(value)
		filters = append(filters, "#"+placeholder+" = :"+placeholder)
	}
	pk := func(attr, value string) {
		names["#pk"] = attr
		values[":pk"] = str(value)
		key = "#pk = :pk AND #sk >= :floor"
	}
	switch {
	case q.TaskID != "":
		in.IndexName = aws.String(IndexRecordsByTask)
		pk(attrTaskID, q.TaskID)
		if q.Trigger != "" {
			filter(attrTrigger, "trigger", q.Trigger)
		}
		if q.Status != "" {
			filter(attrStatus, "status", string(q.Status))
		}
	case q.Trigger != "":
		pk(attrTrigger, q.Trigger)
		in.ConsistentRead = aws.Bool(true)
		if q.Status != "" {
			filter(attrStatus, "status", string(q.Status))
		}
	case q.Status != "":
		in.IndexName = aws.String(IndexRecordsByStatus)
		pk(attrStatus, string(q.Status))
	default:
		in.IndexName = aws.String(IndexRecordsByTime)
		pk(attrFeed, feedAll)
	}
	in.KeyConditionExpression = aws.String(key)
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = names, values
	if len(filters) > 0 {
		expr := filters[0]
		for _, f := range filters[1:] {
			expr += " AND " + f
		}
		in.FilterExpression = aws.String(expr)
	} else {
		// Without a filter every item read is returned: read no more
		// than needed.
		in.Limit = aws.Int32(int32(min(limit, 1000)))
	}

	out := make([]record.Record, 0, min(limit, 100))
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() && len(out) < limit {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list records: %w", err)
		}
		for _, item := range page.Items {
			doc, ok := getS(item, attrDoc)
			if !ok {
				return nil, fmt.Errorf("list records: stored record without %s", attrDoc)
			}
			var r record.Record
			if err := json.Unmarshal([]byte(doc), &r); err != nil {
				return nil, fmt.Errorf("list records: decode record: %w", err)
			}
			out = append(out, r)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// expiry is the TTL value of an item that lives until t.
func expiry(t time.Time) types.AttributeValue { return num(t.Unix()) }
