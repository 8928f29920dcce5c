package dynamostore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

var _ trigger.Store = (*Triggers)(nil)

// Triggers is the trigger side of the store: one item per trigger, keyed by
// its (globally unique) name, with a GSI on namespace for the receiver.
type Triggers struct{ s *Store }

// Triggers returns the store's trigger.Store.
func (s *Store) Triggers() *Triggers { return &Triggers{s} }

// Namespace returns the triggers of one namespace in name order: one Query
// of the by-namespace index (more pages only past 1 MB of triggers). The
// index is eventually consistent: a write shows up within about a second.
func (ts *Triggers) Namespace(ctx context.Context, namespace string) ([]trigger.Trigger, error) {
	s := ts.s
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Triggers),
		IndexName:                 aws.String(IndexTriggersByNamespace),
		KeyConditionExpression:    aws.String("#ns = :ns"),
		ExpressionAttributeNames:  map[string]string{"#ns": attrNamespace},
		ExpressionAttributeValues: map[string]types.AttributeValue{":ns": str(namespace)},
	}
	var out []trigger.Trigger
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("load triggers for %s: %w", namespace, err)
		}
		for _, item := range page.Items {
			t, err := decodeTrigger(item)
			if err != nil {
				return nil, fmt.Errorf("load triggers for %s: %w", namespace, err)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// Get returns one trigger (a strongly consistent read).
func (ts *Triggers) Get(ctx context.Context, name string) (trigger.Trigger, error) {
	t, err := ts.get(ctx, name)
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("get trigger %s: %w", name, err)
	}
	return t, nil
}

func (ts *Triggers) get(ctx context.Context, name string) (trigger.Trigger, error) {
	out, err := ts.s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(ts.s.tables.Triggers),
		Key:            map[string]types.AttributeValue{attrName: str(name)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return trigger.Trigger{}, err
	}
	if out.Item == nil {
		return trigger.Trigger{}, trigger.ErrNotFound
	}
	return decodeTrigger(out.Item)
}

// List returns every trigger in name order (a Scan: for the CLI, not the
// hot path).
func (ts *Triggers) List(ctx context.Context) ([]trigger.Trigger, error) {
	var out []trigger.Trigger
	p := dynamodb.NewScanPaginator(ts.s.db, &dynamodb.ScanInput{
		TableName:      aws.String(ts.s.tables.Triggers),
		ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list triggers: %w", err)
		}
		for _, item := range page.Items {
			t, err := decodeTrigger(item)
			if err != nil {
				return nil, fmt.Errorf("list triggers: %w", err)
			}
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Create stores a new trigger at version 1, or returns trigger.ErrExists.
func (ts *Triggers) Create(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	t.Version, t.UpdatedAt = 1, ts.s.now().UTC()
	item, err := encodeTrigger(t)
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("create trigger %s: %w", t.Name, err)
	}
	_, err = ts.s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(ts.s.tables.Triggers),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#name)"),
		ExpressionAttributeNames: map[string]string{"#name": attrName},
	})
	if _, failed := conditionFailed(err); failed {
		return trigger.Trigger{}, fmt.Errorf("create trigger %s: %w", t.Name, trigger.ErrExists)
	}
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("create trigger %s: %w", t.Name, err)
	}
	return t, nil
}

// Update replaces the trigger if its stored version is t.Version, or returns
// trigger.ErrNotFound / trigger.ErrConflict. Moving a trigger to another
// namespace is the same single write: the index follows.
func (ts *Triggers) Update(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	yours := t.Version
	t.Version, t.UpdatedAt = yours+1, ts.s.now().UTC()
	item, err := encodeTrigger(t)
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("update trigger %s: %w", t.Name, err)
	}
	_, err = ts.s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(ts.s.tables.Triggers),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_exists(#name) AND #version = :v"),
		ExpressionAttributeNames:            map[string]string{"#name": attrName, "#version": attrVersion},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":v": num(yours)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("update trigger %s: %w", t.Name, ts.whyFailed(ctx, t.Name, yours, err))
	}
	return t, nil
}

// Delete removes the trigger if its stored version is version (0: any), or
// returns trigger.ErrNotFound / trigger.ErrConflict.
func (ts *Triggers) Delete(ctx context.Context, name string, version int64) error {
	in := &dynamodb.DeleteItemInput{
		TableName:                           aws.String(ts.s.tables.Triggers),
		Key:                                 map[string]types.AttributeValue{attrName: str(name)},
		ConditionExpression:                 aws.String("attribute_exists(#name)"),
		ExpressionAttributeNames:            map[string]string{"#name": attrName},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if version != 0 {
		in.ConditionExpression = aws.String("attribute_exists(#name) AND #version = :v")
		in.ExpressionAttributeNames["#version"] = attrVersion
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": num(version)}
	}
	if _, err := ts.s.db.DeleteItem(ctx, in); err != nil {
		return fmt.Errorf("delete trigger %s: %w", name, ts.whyFailed(ctx, name, version, err))
	}
	return nil
}

// whyFailed turns a failed conditional write into ErrNotFound or
// ErrConflict. DynamoDB returns the stored item with the failure
// (ReturnValuesOnConditionCheckFailure=ALL_OLD); servers that do not (such
// as dynalite) get a consistent read instead.
func (ts *Triggers) whyFailed(ctx context.Context, name string, yours int64, err error) error {
	old, failed := conditionFailed(err)
	if !failed {
		return err
	}
	if len(old) == 0 {
		t, gerr := ts.get(ctx, name)
		if gerr != nil {
			return gerr // ErrNotFound, or the read failed
		}
		return fmt.Errorf("%w: stored version %d, yours %d", trigger.ErrConflict, t.Version, yours)
	}
	stored, _ := getN(old, attrVersion)
	return fmt.Errorf("%w: stored version %d, yours %d", trigger.ErrConflict, stored, yours)
}

func encodeTrigger(t trigger.Trigger) (map[string]types.AttributeValue, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return map[string]types.AttributeValue{
		attrName:      str(t.Name),
		attrNamespace: str(t.Namespace),
		attrVersion:   num(t.Version),
		attrUpdatedAt: str(t.UpdatedAt.Format(time.RFC3339Nano)),
		attrDoc:       str(string(b)),
	}, nil
}

func decodeTrigger(item map[string]types.AttributeValue) (trigger.Trigger, error) {
	var t trigger.Trigger
	doc, ok := getS(item, attrDoc)
	if !ok {
		name, _ := getS(item, attrName)
		return t, fmt.Errorf("stored trigger %q has no %s attribute", name, attrDoc)
	}
	if err := json.Unmarshal([]byte(doc), &t); err != nil {
		return t, fmt.Errorf("decode stored trigger: %w", err)
	}
	// The key attributes are authoritative.
	if v, ok := getN(item, attrVersion); ok {
		t.Version = v
	}
	return t, nil
}

func getN(item map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}
