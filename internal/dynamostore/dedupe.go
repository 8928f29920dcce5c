package dynamostore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regtrigger/regtrigger/internal/receiver"
)

var _ receiver.Dedupe = (*Store)(nil)

// Claim records key until now+ttl and reports whether it was new: absent,
// or present but expired (TTL deletes late, so an expired item may still be
// there). It is one conditional put; of racing claims exactly one wins.
// Expiry has a resolution of one second (TTL attributes are epoch seconds).
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	now := s.now()
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.Dedupe),
		Item: map[string]types.AttributeValue{
			attrKey:      str(key),
			TTLAttribute: expiry(now.Add(ttl)),
		},
		ConditionExpression:       aws.String("attribute_not_exists(#k) OR #e <= :now"),
		ExpressionAttributeNames:  map[string]string{"#k": attrKey, "#e": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": expiry(now)},
	})
	if _, failed := conditionFailed(err); failed {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim duplicate key: %w", err)
	}
	return true, nil
}

// Release forgets key, so the next Claim of it wins.
func (s *Store) Release(ctx context.Context, key string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.tables.Dedupe),
		Key:       map[string]types.AttributeValue{attrKey: str(key)},
	})
	if err != nil {
		return fmt.Errorf("release duplicate key: %w", err)
	}
	return nil
}
