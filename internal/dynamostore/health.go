package dynamostore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regtrigger/regtrigger/internal/delivery"
)

var _ delivery.Health = (*Health)(nil)

// Health is the delivery policies' state in the dedupe table, which is a
// key-value table with a TTL already: one item per target
// ("health#target#https://host:443": failures, open_until, cool_down,
// probe_until) and one per failing trigger ("health#trigger#<name>":
// failing_since). Times are epoch milliseconds. A failure is one
// UpdateItem with ADD, so racing dispatchers count every failure; opening
// a circuit and claiming its probe are conditional UpdateItems, so of
// racing dispatchers one wins. Items expire healthTTL after their last
// write (a target that recovered has no item at all).
type Health struct{ s *Store }

// Health returns the store's delivery.Health.
func (s *Store) Health() *Health { return &Health{s} }

// healthTTL is how long a health item outlives its last write.
const healthTTL = 30 * 24 * time.Hour

const (
	attrFailures     = "failures"
	attrOpenUntil    = "open_until"
	attrCoolDown     = "cool_down_ms"
	attrProbeUntil   = "probe_until"
	attrFailingSince = "failing_since"
)

func targetItemKey(target string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: str("health#target#" + target)}
}

func triggerItemKey(name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: str("health#trigger#" + name)}
}

// Read returns the state of target and trigger: one BatchGetItem.
func (h *Health) Read(ctx context.Context, target, trigger string) (delivery.State, error) {
	var keys []map[string]types.AttributeValue
	if target != "" {
		keys = append(keys, targetItemKey(target))
	}
	if trigger != "" {
		keys = append(keys, triggerItemKey(trigger))
	}
	var st delivery.State
	if len(keys) == 0 {
		return st, nil
	}
	req := map[string]types.KeysAndAttributes{h.s.tables.Dedupe: {Keys: keys}}
	for try := 0; len(req) > 0; try++ {
		if try == 5 {
			return st, fmt.Errorf("read health: keys still unprocessed after %d tries", try)
		}
		out, err := h.s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return st, fmt.Errorf("read health: %w", err)
		}
		for _, item := range out.Responses[h.s.tables.Dedupe] {
			k, _ := getS(item, attrKey)
			if k == "health#target#"+target {
				st.Target = targetState(item)
			} else {
				st.FailingSince = getMillis(item, attrFailingSince)
			}
		}
		req = out.UnprocessedKeys
	}
	return st, nil
}

// Failed adds a failure to target (UpdateItem ADD) and marks trigger
// failing since now unless it is (if_not_exists).
func (h *Health) Failed(ctx context.Context, target, trigger string, now time.Time) (delivery.State, error) {
	var st delivery.State
	exp := expiry(h.s.now().Add(healthTTL))
	if target != "" {
		out, err := h.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(h.s.tables.Dedupe),
			Key:                       targetItemKey(target),
			UpdateExpression:          aws.String("ADD #f :one SET #e = :exp"),
			ExpressionAttributeNames:  map[string]string{"#f": attrFailures, "#e": TTLAttribute},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":exp": exp},
			ReturnValues:              types.ReturnValueAllNew,
		})
		if err != nil {
			return st, fmt.Errorf("count target failure: %w", err)
		}
		st.Target = targetState(out.Attributes)
	}
	if trigger != "" {
		out, err := h.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(h.s.tables.Dedupe),
			Key:                       triggerItemKey(trigger),
			UpdateExpression:          aws.String("SET #s = if_not_exists(#s, :now), #e = :exp"),
			ExpressionAttributeNames:  map[string]string{"#s": attrFailingSince, "#e": TTLAttribute},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.UnixMilli()), ":exp": exp},
			ReturnValues:              types.ReturnValueAllNew,
		})
		if err != nil {
			return st, fmt.Errorf("mark trigger failing: %w", err)
		}
		st.FailingSince = getMillis(out.Attributes, attrFailingSince)
	}
	return st, nil
}

// Recovered deletes target's and trigger's items.
func (h *Health) Recovered(ctx context.Context, target, trigger string) error {
	for _, k := range []struct {
		name string
		key  map[string]types.AttributeValue
	}{{target, targetItemKey(target)}, {trigger, triggerItemKey(trigger)}} {
		if k.name == "" {
			continue
		}
		if _, err := h.s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(h.s.tables.Dedupe), Key: k.key}); err != nil {
			return fmt.Errorf("forget health of %s: %w", k.name, err)
		}
	}
	return nil
}

// OpenCircuit opens target's circuit if open_until is still prev: a
// conditional UpdateItem.
func (h *Health) OpenCircuit(ctx context.Context, target string, prev, until time.Time, coolDown time.Duration) (bool, error) {
	cond := "attribute_not_exists(#o)"
	vals := map[string]types.AttributeValue{
		":u": num(until.UnixMilli()), ":c": num(coolDown.Milliseconds()), ":exp": expiry(h.s.now().Add(healthTTL)),
	}
	if !prev.IsZero() {
		cond = "#o = :prev"
		vals[":prev"] = num(prev.UnixMilli())
	}
	_, err := h.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(h.s.tables.Dedupe),
		Key:                       targetItemKey(target),
		UpdateExpression:          aws.String("SET #o = :u, #c = :c, #e = :exp REMOVE #p"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#o": attrOpenUntil, "#c": attrCoolDown, "#p": attrProbeUntil, "#e": TTLAttribute},
		ExpressionAttributeValues: vals,
	})
	if _, failed := conditionFailed(err); failed {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open circuit: %w", err)
	}
	return true, nil
}

// ClaimProbe sets probe_until if the cool-down and any earlier probe's
// lease are over: a conditional UpdateItem.
func (h *Health) ClaimProbe(ctx context.Context, target string, now, until time.Time) (bool, error) {
	_, err := h.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(h.s.tables.Dedupe),
		Key:                       targetItemKey(target),
		UpdateExpression:          aws.String("SET #p = :until"),
		ConditionExpression:       aws.String("#o <= :now AND (attribute_not_exists(#p) OR #p <= :now)"),
		ExpressionAttributeNames:  map[string]string{"#o": attrOpenUntil, "#p": attrProbeUntil},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.UnixMilli()), ":until": num(until.UnixMilli())},
	})
	if _, failed := conditionFailed(err); failed {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim circuit probe: %w", err)
	}
	return true, nil
}

func targetState(item map[string]types.AttributeValue) delivery.TargetState {
	return delivery.TargetState{
		Failures:   num0(item, attrFailures),
		OpenUntil:  getMillis(item, attrOpenUntil),
		CoolDown:   time.Duration(num0(item, attrCoolDown)) * time.Millisecond,
		ProbeUntil: getMillis(item, attrProbeUntil),
	}
}

// num0 is a number attribute, 0 when missing.
func num0(item map[string]types.AttributeValue, name string) int64 {
	n, _ := getN(item, name)
	return n
}

func getMillis(item map[string]types.AttributeValue, name string) time.Time {
	n := num0(item, name)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}
