package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regtrigger/regtrigger/internal/coalesce"
)

var _ coalesce.Store = (*Windows)(nil)

// Windows is the coalesce windows in the dedupe table, a key-value table
// with a TTL already: one item per window key ("coalesce#<key>": the
// document in doc, its revision in rev, and the TTL attribute). An Update
// is a strongly consistent GetItem and a PutItem (or DeleteItem)
// conditional on the revision read, tried again when another writer won
// the race; an Update that changes nothing (a task learning it was
// coalesced) is the read alone.
type Windows struct{ s *Store }

// Windows returns the store's coalesce windows.
func (s *Store) Windows() *Windows { return &Windows{s} }

// attrRev is a window item's revision; its document is in attrDoc, as a
// trigger's is.
const attrRev = "rev"

// Update is coalesce.Store.Update by compare-and-swap on the item's
// revision.
func (w *Windows) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	k := map[string]types.AttributeValue{attrKey: str("coalesce#" + key)}
	err := coalesce.CAS(ctx, func() (bool, error) {
		out, err := w.s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.s.tables.Dedupe), Key: k, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return false, fmt.Errorf("read: %w", err)
		}
		now := w.s.now()
		var old []byte
		rev := int64(0) // 0: no live item
		if out.Item != nil && num0(out.Item, TTLAttribute) > now.Unix() {
			if b, ok := out.Item[attrDoc].(*types.AttributeValueMemberB); ok {
				old = b.Value
			}
			rev = num0(out.Item, attrRev)
		}
		doc, err := fn(old)
		switch {
		case errors.Is(err, coalesce.ErrUnchanged):
			return true, nil
		case err != nil:
			return false, err
		case doc == nil && rev == 0:
			return true, nil
		}
		// Written only if the item is as read: absent (or expired), or
		// at the revision read.
		cond, names, values := "attribute_not_exists(#k) OR #e <= :now",
			map[string]string{"#k": attrKey, "#e": TTLAttribute}, map[string]types.AttributeValue{":now": expiry(now)}
		if rev > 0 {
			cond, names, values = "#r = :rev", map[string]string{"#r": attrRev}, map[string]types.AttributeValue{":rev": num(rev)}
		}
		if doc == nil {
			_, err = w.s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName: aws.String(w.s.tables.Dedupe), Key: k,
				ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			})
		} else {
			_, err = w.s.db.PutItem(ctx, &dynamodb.PutItemInput{
				TableName: aws.String(w.s.tables.Dedupe),
				Item: map[string]types.AttributeValue{
					attrKey:      k[attrKey],
					attrDoc:      &types.AttributeValueMemberB{Value: doc},
					attrRev:      num(rev + 1),
					TTLAttribute: expiry(now.Add(ttl)),
				},
				ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			})
		}
		if _, lost := conditionFailed(err); lost {
			return false, nil // another writer won: read again
		}
		if err != nil {
			return false, fmt.Errorf("write: %w", err)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("update coalesce window %s: %w", key, err)
	}
	return nil
}
