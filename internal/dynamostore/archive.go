package dynamostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regtrigger/regtrigger/internal/delivery"
)

// The archive keeps each finished task (delivered, or failed for good) in the
// records table until the retention ends, for `regtrigger redeliver`, as the
// embedded store does. An archived task is one item:
//
//	trigger = "#task:" + task id   sk = "task"   doc = the task JSON   expires_at (TTL)
//
// Trigger names never contain '#', so these partitions never meet a
// trigger's records; the item has no status_day attribute, so the index
// never holds it, and List's Scan filters these partitions out. It costs one
// write per finished task, and it is how List finds a task's records: the
// task names its trigger and when it was made.
//
// The task JSON holds the trigger as it was (URL, headers, signing
// secrets), like the triggers table and the queue messages: DynamoDB
// encrypts it at rest, and nothing here logs it. A task too large for an
// item (a raw-format task carrying a registry body over about 300 KiB) is
// not archived: Archive returns ErrTooLarge and the delivery is unaffected.

// archivePrefix starts the partition key of an archived task.
const archivePrefix = "#task:"

// archiveSK is the sort key of an archived task.
const archiveSK = "task"

// maxArchiveDoc keeps an archived task under DynamoDB's 400 KB item limit,
// with room for the keys and attribute names.
const maxArchiveDoc = 390 << 10

// ErrNotArchived: no finished task with that id is kept (unknown, still
// queued, or past the retention).
var ErrNotArchived = errors.New("no finished task with that id is kept")

// ErrTooLarge: the task does not fit in one DynamoDB item.
var ErrTooLarge = errors.New("task too large to archive in one DynamoDB item")

// Archive keeps a finished task for redelivery until the retention ends.
func (rs *Records) Archive(ctx context.Context, t delivery.Task) error {
	s := rs.s
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("archive task %s: %w", t.ID, err)
	}
	if len(b) > maxArchiveDoc {
		return fmt.Errorf("archive task %s (%d bytes): %w", t.ID, len(b), ErrTooLarge)
	}
	in := &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.Records),
		Item: map[string]types.AttributeValue{
			attrTrigger:  str(archivePrefix + t.ID),
			attrSK:       str(archiveSK),
			TTLAttribute: expiry(s.now().Add(s.retention)),
			attrDoc:      str(string(b)),
		},
	}
	err = retryThrottled(ctx, s.throttleBackoff, func() error {
		_, err := s.db.PutItem(ctx, in)
		return err
	})
	if err != nil {
		return fmt.Errorf("archive task %s: %w", t.ID, err)
	}
	return nil
}

// Archived returns a finished task kept by Archive, or ErrNotArchived.
func (rs *Records) Archived(ctx context.Context, id string) (delivery.Task, error) {
	s := rs.s
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.Records),
		Key:            map[string]types.AttributeValue{attrTrigger: str(archivePrefix + id), attrSK: str(archiveSK)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return delivery.Task{}, fmt.Errorf("read archived task %s: %w", id, err)
	}
	if out.Item == nil || expired(out.Item, s.now().Unix()) {
		return delivery.Task{}, fmt.Errorf("task %s: %w", id, ErrNotArchived)
	}
	doc, ok := getS(out.Item, attrDoc)
	if !ok {
		return delivery.Task{}, fmt.Errorf("archived task %s has no %s", id, attrDoc)
	}
	var t delivery.Task
	if err := json.Unmarshal([]byte(doc), &t); err != nil {
		return delivery.Task{}, fmt.Errorf("decode archived task %s: %w", id, err)
	}
	return t, nil
}

// expired reports whether an item's TTL has passed (TTL deletes lazily).
func expired(item map[string]types.AttributeValue, now int64) bool {
	v, ok := item[TTLAttribute].(*types.AttributeValueMemberN)
	if !ok {
		return false
	}
	at, err := strconv.ParseInt(v.Value, 10, 64)
	return err == nil && at <= now
}
